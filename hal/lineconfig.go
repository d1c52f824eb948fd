package hal

import "fmt"

// Validate reports the first field of c that no UART can use.
func (c LineConfig) Validate() error {
	switch {
	case c.Baud <= 0:
		return fmt.Errorf("baud %d: must be positive", c.Baud)
	case c.Parity > ParityNone:
		return fmt.Errorf("parity %d: must be even, odd or none", c.Parity)
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("stop bits %d: must be 1 or 2", c.StopBits)
	case c.GuardETU < 0 || c.GuardETU > 255:
		return fmt.Errorf("guard time %d etu: must be 0..255", c.GuardETU)
	case c.Repeat < 0 || c.Repeat > 7:
		return fmt.Errorf("character repetitions %d: must be 0..7", c.Repeat)
	}
	return nil
}
