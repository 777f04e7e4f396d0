//go:build unix && !linux

package rig

import "syscall"

// ChildProcAttr returns process attributes for a child the rig starts: its
// own process group, so terminal signals reach only the parent. Only Linux
// can also signal the child when the parent dies, so deathSig is ignored.
func ChildProcAttr(deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
