package main

import (
	"context"
	"slices"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/netstream"
)

func init() {
	registerComponent(componentSpec{name: "stream", order: 50, build: buildStream})
}

// streamComponent runs the LAN radio relay.
type streamComponent struct {
	e   env
	srv *netstream.Server
}

func buildStream(e env) (component, error) {
	if !e.cfg.Stream.Enabled {
		return nil, nil
	}
	if e.demo {
		if err := writeDemoSample(e.cfg); err != nil {
			return nil, err
		}
	}
	srv, err := netstream.New(streamConfig(e.cfg), e.log)
	if err != nil {
		return nil, err
	}
	return &streamComponent{e: e, srv: srv}, nil
}

func (s *streamComponent) Start(ctx context.Context) error { return s.srv.Start(ctx) }

// Reload applies stream changes without dropping listeners.
func (s *streamComponent) Reload(cfg *config.Config) error {
	if !cfg.Stream.Enabled {
		return needsRestart("stream relay disabled; it stops at the next restart")
	}
	return s.srv.Reload(streamConfig(cfg))
}

// streamConfig is the [stream] section with web.allowed_hosts added to its
// allowed-hosts: a name the web form answers to is one /status.json may
// answer to as well.
func streamConfig(cfg *config.Config) netstream.Config {
	sc := cfg.Stream
	sc.AllowedHosts = append(slices.Clone(sc.AllowedHosts), cfg.Web.AllowedHosts...)
	return sc
}

// Stop drains listeners, staggered, within the shutdown deadline.
func (s *streamComponent) Stop(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// streamStats returns the relay's mounts for the web form and health
// checks, or false when the relay is off.
func (d *daemon) streamStats() (netstream.Stats, bool) {
	if s, ok := part[*streamComponent](d); ok {
		return s.srv.Stats(), true
	}
	return netstream.Stats{}, false
}
