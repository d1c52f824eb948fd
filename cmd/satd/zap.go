package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"satd.dev/satd/dvbapi/zap"
)

func init() {
	register("zap", "play a receiver against a dvbapi server from a scenario file; report per service (exit 1 on a violation or failed service)", runZap)
}

// runZap implements `satd zap`.
func runZap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("satd zap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tcp := fs.String("tcp", "", "connect to a TCP dvbapi server (tvheadend style), e.g. 127.0.0.1:9000")
	unix := fs.String("unix", "", "connect to a Unix socket server, e.g. /tmp/camd.socket")
	listen := fs.String("listen", "", "create an enigma2-style listen socket (e.g. /tmp/.listen.camd.socket) and wait for the softcam")
	protocol := fs.Int("protocol", 0, "override the scenario's protocol version (1-3)")
	handshake := fs.String("handshake", "", "override the handshake order: client_info_first or capmt_first")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: satd zap [-tcp ADDR | -unix PATH | -listen PATH] [-protocol N] [-handshake ORDER] SCENARIO.toml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	sc, err := zap.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "satd zap:", err)
		return 2
	}
	if *protocol != 0 {
		sc.Protocol = *protocol
	}
	if *handshake != "" {
		sc.Handshake = *handshake
	}
	var conn zap.Connector
	switch {
	case *tcp != "":
		conn = zap.Dial("tcp", *tcp)
	case *unix != "":
		conn = zap.Dial("unix", *unix)
	case *listen != "":
		c, closeFn, err := zap.ListenUnix(*listen)
		if err != nil {
			fmt.Fprintln(stderr, "satd zap:", err)
			return 2
		}
		defer closeFn()
		conn = c
	default:
		conn = zap.Dial("tcp", "127.0.0.1:9000")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	rep, err := zap.Run(ctx, sc, conn)
	if rep != nil {
		rep.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "satd zap:", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
