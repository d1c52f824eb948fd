package main

import (
	"context"
	"time"

	"satd.dev/satd/balancer"
	"satd.dev/satd/cmd/satd/web"
)

// metricsInterval is how often the collector copies the balancer's and
// readers' counters into the Prometheus exposition.
const metricsInterval = 5 * time.Second

// metricsCollector feeds web.Metrics from counters the balancer and the
// readers already keep, so the ECM path does no extra work: it reads the
// deltas periodically instead of reporting each event.
type metricsCollector struct {
	d    *daemon
	m    *web.Metrics
	last balancer.Counters
	// seen holds each reader's counts at the previous collection.
	seen map[string][3]uint64
}

func newMetricsCollector(d *daemon, m *web.Metrics) *metricsCollector {
	return &metricsCollector{d: d, m: m, seen: map[string][3]uint64{}}
}

// run collects every interval until ctx ends, and once more at the end.
func (c *metricsCollector) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.collect()
			return
		case <-t.C:
			c.collect()
		}
	}
}

// collect adds what happened since the previous call.
func (c *metricsCollector) collect() {
	b := c.d.balancer()
	if b == nil {
		return
	}
	now := b.Counters()
	for range now.CacheHits - c.last.CacheHits {
		c.m.CacheHit()
	}
	for range now.CacheEvictions - c.last.CacheEvictions {
		c.m.Eviction()
	}
	c.last = now
	rc := c.d.readersPart()
	if rc == nil {
		return
	}
	for _, u := range rc.units {
		cur := [3]uint64{u.found.Load(), u.notFound.Load(), u.refused.Load()}
		prev := c.seen[u.cfg.Label]
		if cur == prev {
			continue
		}
		// The readers keep no per-ECM time: each ECM is observed at the
		// reader's average found time.
		avg := u.avgFound()
		for i, result := range [3]string{"found", "not found", "queue full"} {
			for range cur[i] - prev[i] {
				c.m.ECM(u.cfg.Label, result, avg)
			}
		}
		c.seen[u.cfg.Label] = cur
	}
}
