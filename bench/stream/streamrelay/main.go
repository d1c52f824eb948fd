// Command streamrelay runs the netstream relay alone from a TOML file holding
// a [stream] section; the e2e and bench scripts use it in place of satd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiles for -pprof only
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pelletier/go-toml/v2"

	"satd.dev/satd/netstream"
)

func main() {
	path := flag.String("config", "", "TOML file with a [stream] section")
	pprof := flag.String("pprof", "", "serve net/http/pprof on this 127.0.0.1:PORT address (off when empty)")
	flag.Parse()
	if err := run(*path, *pprof); err != nil {
		fmt.Fprintln(os.Stderr, "streamrelay:", err)
		os.Exit(1)
	}
}

func run(path, pprofAddr string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var file struct {
		Stream netstream.Config `toml:"stream"`
	}
	file.Stream = netstream.DefaultConfig()
	if err := toml.Unmarshal(raw, &file); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if pprofAddr != "" {
		if !strings.HasPrefix(pprofAddr, "127.0.0.1:") {
			return errors.New("-pprof: only 127.0.0.1:PORT is allowed")
		}
		go func() { fmt.Fprintln(os.Stderr, "streamrelay: pprof:", http.ListenAndServe(pprofAddr, nil)) }()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := netstream.New(file.Stream, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx)
}
