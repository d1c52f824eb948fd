package balancer

import (
	"errors"
	"testing"
)

func TestReconfigureKeepsStats(t *testing.T) {
	r := newRig(t, baseline(), "A", "B")
	r.setStat("A", Found, 10, 200, 1, 0)
	opts := []ReaderConfig{DefaultReaderConfig(), DefaultReaderConfig()}
	opts[1].LBWeight = 300
	cfg := baseline()
	cfg.LBMode = 2
	cfg.ClientTimeout = 4000
	if err := r.d.Reconfigure(cfg, opts); err != nil {
		t.Fatal(err)
	}
	s := r.d.Settings()
	if s.Mode != 2 || s.ClientTimeout != 4000 {
		t.Fatalf("settings not applied: mode %d clienttimeout %d", s.Mode, s.ClientTimeout)
	}
	if got := len(r.d.Snapshot()); got != 1 {
		t.Fatalf("%d stats after Reconfigure, want the 1 kept", got)
	}
}

func TestReconfigureRestartNeeded(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		nopts  int
		reason string
	}{
		{"capacity", func(c *Config) { c.StatEntries *= 2 }, 2, "table capacities"},
		{"readers", func(c *Config) {}, 3, "3 readers configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, baseline(), "A", "B")
			cfg := baseline()
			tt.cfg(&cfg)
			cfg.LBMode = 3
			err := r.d.Reconfigure(cfg, make([]ReaderConfig, tt.nopts))
			if !errors.Is(err, ErrRestartNeeded) {
				t.Fatalf("err = %v, want ErrRestartNeeded", err)
			}
			if tt.name == "capacity" && r.d.Settings().Mode != 3 {
				t.Fatal("the other options were not applied")
			}
		})
	}
}

func TestReconfigureRejectsInvalid(t *testing.T) {
	r := newRig(t, baseline(), "A")
	cfg := baseline()
	cfg.MaxInflight = 0
	if err := r.d.Reconfigure(cfg, []ReaderConfig{DefaultReaderConfig()}); err == nil || errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	if r.d.Settings().Mode != 1 {
		t.Fatal("an invalid configuration was applied")
	}
}
