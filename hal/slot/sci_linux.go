package slot

import (
	"fmt"
	"log/slog"
	"strings"

	"satd.dev/satd/hal"
	"satd.dev/satd/hal/sci"
)

// OpenAny opens the slot c describes: a slot of the kernel smartcard
// driver (see Config.SCI), or a UART with GPIO or modem lines (Open).
func OpenAny(name string, c Config, log *slog.Logger) (hal.Slot, error) {
	if !c.SCI() {
		s, err := Open(name, c, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	var problems []string
	c.Validate(func(k, msg string) { problems = append(problems, k+": "+msg) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("slot %s: %s", name, strings.Join(problems, "; "))
	}
	cfg, err := c.sciConfig(name)
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", name, err)
	}
	dev, err := sci.OpenDevice(c.device())
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", name, err)
	}
	s, err := sci.New(cfg, dev)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("slot %s: %w", name, err)
	}
	log.Info("sci slot opened", "slot", name, "device", c.device(), "ioctl", cfg.Variant, "clock_hz", s.ClockHz())
	return s, nil
}
