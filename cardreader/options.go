package cardreader

import (
	"fmt"
	"time"

	"satd.dev/satd/internal/duration"
)

// Duration is a duration written as "500ms" or "2s" in the configuration file.
type Duration = duration.Duration

// Options are the per-reader settings of the ISO 7816 stack. They sit flat in
// each [[reader]] table next to the slot options of hal.
type Options struct {
	Deprecated      bool     `toml:"deprecated" comment:"Stay at the default speed (F=372, D=1) and send no PPS, like OSCam's deprecated mode. When off, satd falls back to this mode by itself after a failed PPS or card-system init."`
	MaxBaud         int      `toml:"maxbaud" comment:"Highest UART baud rate to negotiate with PPS; 0 means no limit besides 2 % UART accuracy and the card's f(max)."`
	IFSD            int      `toml:"ifsd" comment:"T=1 information field size announced to the card with S(IFS) after the ATR (1-254); 32 sends no S(IFS); 0 offers the card's own IFSC when it is not 32, as OSCam does. A refused or unanswered S(IFS) is logged and the link goes on with 32."`
	T1CRC           string   `toml:"t1_crc" comment:"CRC variant for T=1 cards that ask for a CRC in TC3: ccid (CRC-16/MCRF4XX, high byte first) or x25 (ISO 13239, low byte first)."`
	T1Retries       int      `toml:"t1_retries" comment:"T=1 tries of one block (R-block and retransmission) before S(RESYNCH), 1-10."`
	T1Resynchs      int      `toml:"t1_resynchs" comment:"S(RESYNCH) attempts before the card is reset, 1-10."`
	T0MaxNulls      int      `toml:"t0_max_nulls" comment:"Most consecutive T=0 NULL procedure bytes (0x60) accepted in one command before it fails, 1-100000."`
	T0Repeat        int      `toml:"t0_repeat" comment:"T=0 character repetitions after the card's parity error signal, 0-7; 0 turns it off. A serial port writes whole commands until the card first refuses a character (that command fails), then byte by byte with repetition; USB adapters never switch."`
	ATRStrict       bool     `toml:"atr_strict" comment:"Refuse ATRs that break ISO 7816-3 (bad or missing TCK, trailing bytes, cut short by a gap over 9600 etu) instead of going on with what arrived and reporting the deviation."`
	TimeoutSlack    Duration `toml:"timeout_slack" comment:"Extra time added to every card waiting time (WT, CWT, BWT) for UART and scheduler latency."`
	TimeoutSlackUSB Duration `toml:"timeout_slack_usb" comment:"The slack used instead of timeout_slack when the reader is a USB serial adapter (ttyUSB, ttyACM): their latency timer holds received bytes up to 16 ms."`
	ATRTimeout      Duration `toml:"atr_timeout" comment:"How long to wait for the first ATR byte after reset is released."`
	BackoffMin      Duration `toml:"reset_backoff_min" comment:"Delay before the first reactivation after a card fault; doubled after each further failure."`
	BackoffMax      Duration `toml:"reset_backoff_max" comment:"Upper bound of the reactivation delay after repeated card faults."`
	InitDelay       Duration `toml:"init_delay" comment:"Pause after the card is activated (ATR, PPS) before the first card-system command; OSCam's empirical 1 s lets slow cards finish their own start-up."`
	DropBadCWs      bool     `toml:"dropbadcws" comment:"Refuse control words whose checksum bytes (3, 7, 11, 15) are wrong instead of fixing them (OSCam: dropbadcws)."`
}

// CWPolicy returns the control-word checksum policy of the options.
func (o Options) CWPolicy() CWPolicy {
	if o.DropBadCWs {
		return DropBadCWs
	}
	return FixBadCWs
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		IFSD:            0,
		T1CRC:           "ccid",
		T1Retries:       3,
		T1Resynchs:      3,
		T0MaxNulls:      200,
		T0Repeat:        3,
		TimeoutSlack:    Duration(20 * time.Millisecond),
		TimeoutSlackUSB: Duration(40 * time.Millisecond),
		ATRTimeout:      Duration(100 * time.Millisecond),
		BackoffMin:      Duration(time.Second),
		BackoffMax:      Duration(time.Minute),
		InitDelay:       Duration(time.Second),
	}
}

// Validate reports every invalid setting with its key.
func (o Options) Validate(report func(key, msg string)) {
	rng := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			report(key, fmt.Sprintf("%d is out of range: allowed %d-%d", v, lo, hi))
		}
	}
	if o.MaxBaud < 0 {
		report("maxbaud", fmt.Sprintf("%d is negative: allowed 0 (no limit) or a baud rate", o.MaxBaud))
	}
	rng("ifsd", o.IFSD, 0, 254)
	if o.T1CRC != "ccid" && o.T1CRC != "x25" {
		report("t1_crc", fmt.Sprintf("%q is unknown: allowed ccid or x25", o.T1CRC))
	}
	rng("t1_retries", o.T1Retries, 1, 10)
	rng("t1_resynchs", o.T1Resynchs, 1, 10)
	rng("t0_max_nulls", o.T0MaxNulls, 1, 100000)
	rng("t0_repeat", o.T0Repeat, 0, 7)
	dur := func(key string, d Duration, lo, hi time.Duration) {
		if time.Duration(d) < lo || time.Duration(d) > hi {
			report(key, fmt.Sprintf("%v is out of range: allowed %v to %v", time.Duration(d), lo, hi))
		}
	}
	dur("timeout_slack", o.TimeoutSlack, 0, 2*time.Second)
	dur("timeout_slack_usb", o.TimeoutSlackUSB, 0, 2*time.Second)
	dur("atr_timeout", o.ATRTimeout, time.Millisecond, 10*time.Second)
	dur("reset_backoff_min", o.BackoffMin, time.Millisecond, time.Hour)
	dur("reset_backoff_max", o.BackoffMax, time.Millisecond, 24*time.Hour)
	dur("init_delay", o.InitDelay, 0, 10*time.Second)
	if o.BackoffMax < o.BackoffMin {
		report("reset_backoff_max", fmt.Sprintf("%v is below reset_backoff_min %v", time.Duration(o.BackoffMax), time.Duration(o.BackoffMin)))
	}
}
