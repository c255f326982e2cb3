package ipc

import (
	"net"
	"os"
	"syscall"
)

// dataSocketBuffer is the kernel buffer asked for on each end of a data connection: large
// enough that a batch in flight rarely waits on the socket.
const dataSocketBuffer = 1 << 20

// SocketPair makes a data connection (see README.md): a connected SOCK_STREAM unix socket pair,
// close-on-exec, with large buffers. The host keeps conn; child is the other end, to be handed
// to the child process as its first extra file (fd 3) and closed by the caller once the child
// has started.
func SocketPair() (conn *net.UnixConn, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, fd := range fds {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, dataSocketBuffer)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, dataSocketBuffer)
	}
	hostEnd := os.NewFile(uintptr(fds[0]), "troupe-data-host")
	child = os.NewFile(uintptr(fds[1]), "troupe-data-child")
	c, err := net.FileConn(hostEnd) // dups the descriptor
	hostEnd.Close()
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return c.(*net.UnixConn), child, nil
}
