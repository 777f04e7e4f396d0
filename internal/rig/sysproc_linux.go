//go:build linux

package rig

import "syscall"

// ChildProcAttr returns process attributes for a child the rig starts: its
// own process group, so terminal signals reach only the parent, and on Linux
// deathSig delivered to it when the parent dies, so a crashed test or demo
// leaves nothing behind. (Linux sends deathSig when the parent's OS thread
// that started the child exits; the Go runtime keeps its threads alive, so
// in practice that is when the process exits.)
func ChildProcAttr(deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
}
