package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// S3 has no extended attributes to show. The kernel asks for them on every
// file of every `ls -l` (security.selinux, the POSIX ACLs) unless the
// filesystem answers ENOSYS once: then it stops sending GETXATTR and
// LISTXATTR for the life of the mount, and answers EOPNOTSUPP itself.
// Setting one is answered by each node's Setxattr: EROFS or ENOTSUP.

var (
	_ fusefs.NodeGetxattrer  = (*dirNode)(nil)
	_ fusefs.NodeListxattrer = (*dirNode)(nil)
	_ fusefs.NodeGetxattrer  = (*synthDir)(nil)
	_ fusefs.NodeListxattrer = (*synthDir)(nil)
	_ fusefs.NodeGetxattrer  = (*fileNode)(nil)
	_ fusefs.NodeListxattrer = (*fileNode)(nil)
)

// Getxattr implements fusefs.NodeGetxattrer.
func (*dirNode) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Listxattr implements fusefs.NodeListxattrer.
func (*dirNode) Listxattr(context.Context, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Getxattr implements fusefs.NodeGetxattrer.
func (*synthDir) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Listxattr implements fusefs.NodeListxattrer.
func (*synthDir) Listxattr(context.Context, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Getxattr implements fusefs.NodeGetxattrer.
func (*fileNode) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Listxattr implements fusefs.NodeListxattrer.
func (*fileNode) Listxattr(context.Context, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}
