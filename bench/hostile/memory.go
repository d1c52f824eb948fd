package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// heapBoundMB is issue 16's memory bound: at most 64 MB of Go heap in the
// daemon under any attack.
const heapBoundMB = 64

// sampleEvery is how often the daemon's memory is sampled during an attack.
const sampleEvery = 100 * time.Millisecond

// heapMetric is the daemon's Go heap in /metrics: the bytes of live objects
// and of dead ones not yet swept (runtime/metrics
// /memory/classes/heap/objects:bytes, what the heap holds at that moment).
const heapMetric = "go_heap_objects_bytes"

// memPeak is what a memSampler saw.
type memPeak struct {
	heap    float64 // the largest heapMetric sampled, bytes
	samples int     // scrapes that answered
	misses  int     // scrapes that did not (the attack held the web form)
}

func (p memPeak) String(rssMB int) string {
	if p.samples == 0 {
		return fmt.Sprintf("heap: no sample in %d tries; RSS peak +%d MB", p.misses, rssMB)
	}
	return fmt.Sprintf("heap peak %.1f MB in %d samples, RSS peak +%d MB", p.heap/(1<<20), p.samples, rssMB)
}

// check is the bound every case asserts besides its own.
func (p memPeak) check() error {
	switch {
	case p.samples == 0:
		return errors.New("no heap sample from /metrics during the attack")
	case p.heap > heapBoundMB<<20:
		return fmt.Errorf("the daemon's heap reached %.1f MB (bound %d MB)", p.heap/(1<<20), heapBoundMB)
	}
	return nil
}

// memSampler scrapes the daemon's /metrics every sampleEvery over one
// kept-alive connection from 127.0.0.3 (opened before the attack, so a
// flood of the web form's accept queue does not cut it off), and reads its
// resident memory from /proc.
type memSampler struct {
	t    *Target
	stop chan struct{}
	done chan memPeak
}

// sampleMemory starts sampling; stop ends it and returns the peak.
func (t *Target) sampleMemory() *memSampler {
	s := &memSampler{t: t, stop: make(chan struct{}), done: make(chan memPeak, 1)}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: 2 * time.Second}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
	var p memPeak
	s.sample(c, &p) // before the attack starts: the connection is open
	go func() {
		defer c.CloseIdleConnections()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				s.sample(c, &p)
				s.done <- p
				return
			case <-tick.C:
				s.sample(c, &p)
			}
		}
	}()
	return s
}

func (s *memSampler) stopSampling() memPeak {
	close(s.stop)
	return <-s.done
}

func (s *memSampler) sample(c *http.Client, p *memPeak) {
	s.t.sampleRSS()
	v, err := scrapeHeap(c, s.t.URL("/metrics"))
	if err != nil {
		p.misses++
		return
	}
	p.samples++
	p.heap = max(p.heap, v)
}

// scrapeHeap reads heapMetric from a /metrics answer.
func scrapeHeap(c *http.Client, url string) (float64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	defer io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection reusable
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), heapMetric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics: no %s", heapMetric)
}
