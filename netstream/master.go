package netstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Master–slave relaying (Icecast's master-server options): a relay with
// master-server set fetches the master's /admin/streamlist.txt every
// master-update-interval and relays every listed mount its configuration
// lacks, from the master, with the master credentials. The list is bounded
// (maxRelayed mounts, 64 KiB).
const maxRelayed = 64

// streamList serves /admin/streamlist.txt: one mount with a source per
// line, for the admin credentials.
func (s *Server) streamList(conn net.Conn, req *http.Request, ip string) {
	user, pass, _ := req.BasicAuth()
	cfg := s.conf()
	if !s.checkPassword(conn, ip, "Icecast2 Server", func() bool {
		return cfg.AdminPassword != "" && user == cfg.AdminUser && constEq(pass, cfg.AdminPassword)
	}) {
		return
	}
	var b strings.Builder
	for _, m := range s.listed(true) {
		b.WriteString(m.name + "\n")
	}
	writeSimple(conn, http.StatusOK, nil, bodyFor(req, b.String()))
}

// masterLoop keeps the relayed mounts in step with the master's list.
func (s *Server) masterLoop() {
	defer s.wg.Done()
	for {
		cfg := s.conf()
		wait := time.Minute
		if cfg.MasterServer != "" {
			wait = cfg.MasterInterval.Std()
			if names, err := s.fetchStreamList(cfg); err != nil {
				s.log.Warn("stream: master stream list", "master", cfg.MasterServer, "err", err)
			} else {
				s.setRelayed(names)
			}
		}
		if !sleepCtx(s.ctx, wait) {
			return
		}
	}
}

// masterBase is the master's URL with the credentials, without a path.
func masterBase(c *Config) string {
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(c.MasterServer, strconv.Itoa(c.MasterPort)),
		User: url.UserPassword(c.MasterUser, c.MasterPassword)}
	return u.String()
}

// fetchStreamList reads the master's mount list.
func (s *Server) fetchStreamList(c *Config) ([]string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(c.MasterServer, strconv.Itoa(c.MasterPort))+"/admin/streamlist.txt", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.MasterUser, c.MasterPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var names []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<10))
	for sc.Scan() && len(names) < maxRelayed {
		name := strings.TrimSpace(sc.Text())
		probe := MountConfig{Name: name}
		ok := true
		probe.Validate(func(k, _ string) { ok = ok && k != "mount-name" })
		if ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, sc.Err()
}

// setRelayed applies a new master list if it changed.
func (s *Server) setRelayed(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(names, s.relayed) || s.ctx == nil {
		return
	}
	prev := s.relayed
	s.relayed = names
	if err := s.reloadLocked(s.withRelayed(s.base)); err != nil {
		s.relayed = prev
		s.log.Warn("stream: relaying the master's mounts", "err", err)
	}
}

// withRelayed returns cfg plus a relayed mount for every master mount it
// lacks (s.mu held).
func (s *Server) withRelayed(cfg Config) Config {
	if cfg.MasterServer == "" || len(s.relayed) == 0 {
		return cfg
	}
	out := cfg
	out.Mounts = slices.Clone(cfg.Mounts)
	base := masterBase(&cfg)
	for _, name := range s.relayed {
		if slices.ContainsFunc(cfg.Mounts, func(m MountConfig) bool { return m.Name == name }) {
			continue
		}
		mc := DefaultMount()
		mc.Name = name
		mc.Upstreams = []string{base + name}
		out.Mounts = append(out.Mounts, mc)
	}
	return out
}
