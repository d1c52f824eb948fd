package balancer

import (
	"context"
	"sync"
	"time"
)

// Run drives the timers on the real clock and runs lb_save saves in the
// background until ctx ends. It uses one reused timer. Call Close after
// Run returns for the shutdown save.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.saveReq:
				if err := d.SaveStats(); err != nil {
					d.log.Error("stats save failed", "err", err)
				}
			}
		}
	}()
	defer wg.Wait()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.Tick()
		wait := time.Hour
		if next, ok := d.NextDeadline(); ok {
			wait = max(time.Duration(next-d.clock.Now())*time.Millisecond, 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-d.wake:
		}
	}
}

// Close performs the shutdown save when lb_mode and lb_save are both set.
func (d *Dispatcher) Close() error {
	if s := d.Settings(); s.Mode != 0 && s.Save != 0 {
		return d.SaveStats()
	}
	return nil
}
