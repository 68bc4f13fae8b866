package server

import (
	"log/slog"
	"net"

	"golang.org/x/sys/unix"
)

// unixPeer names a unix socket peer by its process credentials
// (SO_PEERCRED): the only identity a plain unix connection has.
func unixPeer(nc net.Conn) []slog.Attr {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *unix.Ucred
	if cerr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); cerr != nil || err != nil {
		return nil
	}
	return []slog.Attr{slog.Int("peer_uid", int(cred.Uid)), slog.Int("peer_pid", int(cred.Pid))}
}
