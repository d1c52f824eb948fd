// Command fakesatd is a stand-in for satd in the binary-update end-to-end
// test: it has satd's -version and -check flags, serves a tiny web form,
// runs the real update.Manager (install on POST /update, post-update health
// checks at start) and writes a readiness file. The test builds it in
// variants with -ldflags "-X main.version=... -X main.mode=...":
// mode "good" is healthy, "noweb" never serves its web form (so its health
// check fails), "crash" exits at once.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"satd.dev/satd/cmd/satd/update"
	"satd.dev/satd/internal/atomicfile"
)

var (
	version = "dev"
	mode    = "good"
)

// Ready is what the readiness file holds.
type Ready struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	URL     string `json:"url"`
}

func main() {
	showVersion := flag.Bool("version", false, "print the version")
	check := flag.Bool("check", false, "check the configuration")
	config := flag.String("config", "", "configuration file")
	state := flag.String("state", "", "update state directory")
	ready := flag.String("ready", "", "readiness file")
	pubkey := flag.String("pubkey", "", "minisign public key")
	manifestURL := flag.String("manifest-url", "", "manifest URL")
	flag.Parse()
	if *showVersion {
		fmt.Printf("satd %s\n", version)
		return
	}
	cfgErr := loadConfig(*config)
	if *check {
		if cfgErr != nil {
			fmt.Fprintln(os.Stderr, cfgErr)
			os.Exit(2)
		}
		return
	}
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "fakesatd: crashing on purpose")
		os.Exit(3)
	}
	if err := run(cfgErr, *config, *state, *ready, *pubkey, *manifestURL); err != nil {
		fmt.Fprintln(os.Stderr, "fakesatd:", err)
		os.Exit(1)
	}
}

func loadConfig(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "[web]") {
		return errors.New("configuration has no [web] table")
	}
	return nil
}

// health is the HealthSource of the fake daemon.
type health struct {
	cfgErr error
	url    string
}

func (h health) ConfigLoaded() error    { return h.cfgErr }
func (h health) WebURL() string         { return h.url }
func (h health) ReadyReaders() []string { return []string{"slot0"} }
func (h health) UpMounts() []string     { return []string{"/radio"} }

func run(cfgErr error, config, state, ready, pubkey, manifestURL string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	url := "http://" + l.Addr().String()
	if mode == "noweb" {
		l.Close() // the web form never comes up
	}
	exit := make(chan int, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("fakesatd", version)
	m, err := update.New(update.Options{
		Policy:        update.Policy{PublicKeys: []string{pubkey}, Board: "satrx-test", Running: version},
		ManifestURL:   manifestURL,
		Dir:           filepath.Join(state, "work"),
		Kind:          update.KindBinary,
		MaxSize:       64 << 20,
		Slots:         update.Slots{Dir: state},
		ConfigPath:    config,
		Health:        health{cfgErr: cfgErr, url: url + "/"},
		HealthTimeout: 2 * time.Second,
		Restart: func(rollback bool) {
			if rollback {
				exit <- 1
			} else {
				exit <- 0
			}
		},
		Log: log,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux(m)}
	if mode != "noweb" {
		go srv.Serve(l)
	}
	b, _ := json.Marshal(Ready{Version: version, PID: os.Getpid(), URL: url})
	if err := atomicfile.WriteFile(ready, b, 0o644); err != nil {
		return err
	}
	go m.ConfirmBoot(context.Background())
	code := <-exit
	// Like satd's web component, drain the server before exiting: the
	// POST /update that asked for the restart is answered first. The
	// bound only keeps a stuck client from holding the restart forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	srv.Shutdown(ctx)
	cancel()
	os.Exit(code)
	return nil
}

func mux(m *update.Manager) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "satd web form") })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(m.Status()) })
	mux.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Check(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		fmt.Fprintln(w, "installed")
	})
	return mux
}
