package netstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// YP directory listing (Icecast's <directory>): every public mount with
// fresh audio is added to each yp-url with the YP protocol's form fields
// (action=add: sn, genre, cpswd, desc, url, listenurl, type, b), touched
// every TouchFreq seconds the directory asks for (action=touch: sid, st,
// listeners) and removed (action=remove) when it stops being public or
// playing, or at shutdown. A refused or failed request is retried after
// ypRetry.
const ypRetry = time.Minute

// ypEntry is one mount's listing in one directory.
type ypEntry struct {
	sid  string
	next time.Time
}

// errYP is a directory that answered without YPResponse: 1.
var errYP = errors.New("yp directory refused")

// ypLoop keeps the listings in step once a second.
func (s *Server) ypLoop() {
	defer s.wg.Done()
	listed := map[[2]string]*ypEntry{} // (yp-url, mount) -> listing
	for {
		wait := time.Minute // an idle relay without directories barely wakes up
		if len(s.conf().YPURLs) > 0 || len(listed) > 0 {
			wait = time.Second
		}
		if !sleepCtx(s.ctx, wait) {
			break
		}
		s.ypPass(listed, time.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.conf().YPTimeout.Std())
	defer cancel()
	for key, e := range listed {
		if e.sid != "" {
			_, _ = s.ypCall(ctx, key[0], url.Values{"action": {"remove"}, "sid": {e.sid}})
		}
	}
}

// ypPass adds, touches and removes listings as needed.
func (s *Server) ypPass(listed map[[2]string]*ypEntry, now time.Time) {
	cfg := s.conf()
	want := map[[2]string]*mount{}
	for _, yp := range cfg.YPURLs {
		for _, m := range s.listed(false) {
			if m.info.Load().public && m.fresh(now, cfg.ReadyFresh.Std()) {
				want[[2]string{yp, m.name}] = m
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, cfg.YPTimeout.Std())
	defer cancel()
	for key, e := range listed {
		if want[key] == nil {
			if e.sid != "" {
				_, _ = s.ypCall(ctx, key[0], url.Values{"action": {"remove"}, "sid": {e.sid}})
			}
			delete(listed, key)
		}
	}
	for key, m := range want {
		e := listed[key]
		if e == nil {
			e = &ypEntry{}
			listed[key] = e
		}
		if now.Before(e.next) {
			continue
		}
		e.next = now.Add(ypRetry)
		if e.sid == "" {
			si := m.info.Load()
			h, err := s.ypCall(ctx, key[0], url.Values{"action": {"add"}, "sn": {si.name}, "genre": {si.genre}, "cpswd": {""},
				"desc": {si.description}, "url": {si.url}, "listenurl": {s.listenURL(m)},
				"type": {codec(m.codec.Load()).contentType()}, "b": {strconv.Itoa(int(m.bitrate.Load() / 1000))}})
			if err != nil {
				s.log.Warn("stream: yp add", "yp", key[0], "mount", m.name, "err", err)
				continue
			}
			e.sid = h.Get("SID")
			e.next = now.Add(touchFreq(h))
			continue
		}
		h, err := s.ypCall(ctx, key[0], url.Values{"action": {"touch"}, "sid": {e.sid},
			"st": {m.meta.Load().title}, "listeners": {strconv.Itoa(int(m.listeners.Load()))}})
		if err != nil {
			s.log.Warn("stream: yp touch", "yp", key[0], "mount", m.name, "err", err)
			e.sid = "" // add again at the next try
			continue
		}
		e.next = now.Add(touchFreq(h))
	}
}

// touchFreq is the directory's TouchFreq (seconds), within 1 s and 1 h.
func touchFreq(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("TouchFreq"))
	if err != nil || n <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// ypCall posts one YP request and returns the response headers.
func (s *Server) ypCall(ctx context.Context, yp string, form url.Values) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, yp, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", serverID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.Header.Get("YPResponse") != "1" {
		return nil, fmt.Errorf("%w: %s", errYP, resp.Header.Get("YPMessage"))
	}
	return resp.Header, nil
}
