package iso7816

import "time"

// Timing converts ISO 7816-3 waiting times, expressed in etu or clock
// cycles, into durations for a card clock ClockHz and parameters F and D.
type Timing struct {
	ClockHz int
	F, D    int
}

// InitialTiming is the timing during the ATR and PPS (Fd = 372, Dd = 1).
func InitialTiming(clockHz int) Timing {
	return Timing{ClockHz: clockHz, F: DefaultF, D: DefaultD}
}

// Baud returns the bit rate f·D/F rounded to the nearest integer.
func (t Timing) Baud() int {
	if t.F <= 0 {
		return 0
	}
	return (t.ClockHz*t.D + t.F/2) / t.F
}

// ETUs returns the duration of n elementary time units, n·F/(D·f) seconds,
// computed without intermediate rounding.
func (t Timing) ETUs(n int) time.Duration {
	if t.ClockHz <= 0 || t.D <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(t.F) * int64(time.Second) / (int64(t.D) * int64(t.ClockHz)))
}

// Clocks returns the duration of n card clock cycles.
func (t Timing) Clocks(n int) time.Duration {
	if t.ClockHz <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / int64(t.ClockHz))
}

// WT returns the T=0 work waiting time WI·960·D etu (WI = 0 is reserved and
// treated as the default 10).
func (t Timing) WT(wi int) time.Duration {
	if wi <= 0 {
		wi = DefaultWI
	}
	return t.ETUs(wi * 960 * t.D)
}

// CWT returns the T=1 character waiting time (11 + 2^CWI) etu.
func (t Timing) CWT(cwi int) time.Duration { return t.ETUs(11 + 1<<(cwi&15)) }

// BWT returns the T=1 block waiting time 11 etu + 2^BWI·960·372/f seconds.
func (t Timing) BWT(bwi int) time.Duration {
	return t.ETUs(11) + Timing{ClockHz: t.ClockHz, F: DefaultF, D: 1}.ETUs(960<<(bwi&15))
}

// BGT returns the T=1 block guard time, 22 etu.
func (t Timing) BGT() time.Duration { return t.ETUs(22) }

// GuardETU returns the extra etu to wait between two characters sent to the
// card for TC1 = n: n itself, except that N = 255 means the minimum (no extra
// time for T=0 at 12 etu; for T=1 the character guard time drops to 11 etu,
// which a 2-stop-bit UART cannot do, so 0 extra is the closest).
func GuardETU(n int) int {
	if n == 255 {
		return 0
	}
	return n
}

// InitialWaitingTime is the maximum gap between two ATR characters and the
// PPS waiting time: 9600 initial etu.
func (t Timing) InitialWaitingTime() time.Duration {
	return InitialTiming(t.ClockHz).ETUs(9600)
}
