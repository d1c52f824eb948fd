package zap

import (
	"context"
	"net"
	"os"
)

// Dial returns a Connector that dials network ("tcp" or "unix") addr.
func Dial(network, addr string) Connector {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// ListenUnix creates an enigma2-style listen socket at path (like
// /tmp/.listen.camd.socket) and returns a Connector that accepts the
// softcam's next connection, and a function that removes the socket.
func ListenUnix(path string) (Connector, func(), error) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, err
	}
	c := func(ctx context.Context) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := l.Accept(); ch <- res{c, err} }()
		select {
		case r := <-ch:
			return r.c, r.err
		case <-ctx.Done():
			l.Close()
			return nil, ctx.Err()
		}
	}
	return c, func() { l.Close() }, nil
}
