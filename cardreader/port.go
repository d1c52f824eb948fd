package cardreader

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/t1"
	"satd.dev/satd/hal"
)

// pollSlice bounds each blocking Read so a card-removal flag set by the
// lifecycle goroutine is noticed well within 50 ms even on links whose Read
// does not itself fail when the card goes.
const pollSlice = 20 * time.Millisecond

// minPause is the shortest turnaround pause worth sleeping for; shorter ones
// are below timer resolution and hidden by UART latency.
const minPause = 20 * time.Microsecond

// port is the byte layer over a hal.Link: the inverse-convention transform,
// per-character deadlines, removal polling and a small receive buffer. It
// allocates nothing after construction.
type port struct {
	link    hal.Link
	inverse bool
	slack   time.Duration // added to every waiting time for tty latency
	etu     time.Duration
	removed *atomic.Bool
	tx      [t1.MaxBlockLen + 8]byte
	rx      [64]byte
	rxr     int
	rxw     int
	rxErr   error // line error of the byte at rx[rxr] (a lone marked byte)
	// turn is the least distance in etu between the leading edges of two
	// characters in opposite directions: 16 for T=0 (and the ATR and PPS),
	// 22 (BGT) for T=1. lastRx is when the last character was read; a
	// character is complete (10 etu after its edge) when the UART hands it
	// over, so the next write waits until lastRx + (turn - 10) etu.
	turn   int
	lastRx time.Time
}

// Turnarounds in etu between characters in opposite directions (ISO/IEC
// 7816-3 §7.2 and §11.2).
const (
	t0Turnaround = 16
	t1Turnaround = 22 // BGT
)

// reset forgets buffered input and takes the line parameters from cfg.
func (p *port) reset(cfg hal.LineConfig) {
	p.rxr, p.rxw, p.rxErr = 0, 0, nil
	p.etu = cfg.ETU()
	if p.turn == 0 {
		p.turn = t0Turnaround
	}
}

// write sends b, transformed for the inverse convention, no earlier than
// the turnaround after the last character received.
func (p *port) write(b []byte) error {
	if p.removed.Load() {
		return ErrCardRemoved
	}
	p.waitTurn()
	out := b
	if p.inverse {
		for len(b) > 0 {
			n := copy(p.tx[:], b)
			for i := range n {
				p.tx[i] = iso7816.InverseByte(p.tx[i])
			}
			if err := p.writeRaw(p.tx[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	return p.writeRaw(out)
}

func (p *port) writeRaw(b []byte) error {
	if _, err := p.link.Write(b); err != nil {
		return p.linkErr("write", err)
	}
	return nil
}

// linkErr maps hal errors to the stack's errors.
func (p *port) linkErr(op string, err error) error {
	if errors.Is(err, hal.ErrNoCard) || p.removed.Load() {
		return ErrCardRemoved
	}
	return fmt.Errorf("%s: %w", op, err)
}

// readByte returns the next logical byte, waiting at most timeout (plus
// slack) for it. A byte received with a parity or framing error is returned
// with an error wrapping hal.ErrParity or hal.ErrFraming.
func (p *port) readByte(timeout time.Duration) (byte, error) {
	if p.rxr == p.rxw {
		if err := p.fill(timeout); err != nil {
			return 0, err
		}
	}
	b := p.rx[p.rxr]
	p.rxr++
	if p.inverse {
		b = iso7816.InverseByte(b)
	}
	if err := p.rxErr; err != nil {
		p.rxErr = nil
		return b, err
	}
	return b, nil
}

// fill reads at least one byte into the empty buffer.
func (p *port) fill(timeout time.Duration) error {
	deadline := time.Now().Add(timeout + p.slack)
	for {
		if p.removed.Load() {
			return ErrCardRemoved
		}
		now := time.Now()
		if !now.Before(deadline) {
			return ErrMute
		}
		dl := deadline
		if dl.Sub(now) > pollSlice {
			dl = now.Add(pollSlice)
		}
		if err := p.link.SetReadDeadline(dl); err != nil {
			return p.linkErr("set deadline", err)
		}
		n, err := p.link.Read(p.rx[:])
		if n > 0 {
			p.lastRx = time.Now()
			p.rxr, p.rxw = 0, n
			if err != nil && (errors.Is(err, hal.ErrParity) || errors.Is(err, hal.ErrFraming)) {
				p.rxErr = err
			}
			return nil
		}
		switch {
		case err == nil:
		case errors.Is(err, hal.ErrTimeout):
		default:
			return p.linkErr("read", err)
		}
	}
}

// readFull fills dst, waiting first for the first byte and next for each
// following one. It keeps reading after a line error so the block stays in
// step, and returns the first line error at the end.
func (p *port) readFull(dst []byte, first, next time.Duration) error {
	var lineErr error
	wait := first
	for i := range dst {
		b, err := p.readByte(wait)
		if err != nil && !isLineErr(err) {
			return err
		}
		if err != nil && lineErr == nil {
			lineErr = err
		}
		dst[i] = b
		wait = next
	}
	return lineErr
}

func isLineErr(err error) bool {
	return errors.Is(err, hal.ErrParity) || errors.Is(err, hal.ErrFraming)
}

// drain discards input until the line has been quiet for quiet (bounded to
// 64 reads so a babbling card cannot hold us).
func (p *port) drain(quiet time.Duration) error {
	p.rxr, p.rxw, p.rxErr = 0, 0, nil
	for range 64 {
		if _, err := p.readByte(quiet); err != nil && !isLineErr(err) {
			if errors.Is(err, ErrMute) {
				return nil
			}
			return err
		}
	}
	return nil
}

// waitTurn sleeps until the turnaround after the last received character
// has passed.
func (p *port) waitTurn() {
	if p.lastRx.IsZero() {
		return
	}
	d := time.Until(p.lastRx.Add(time.Duration(p.turn-10) * p.etu))
	p.lastRx = time.Time{}
	if d >= minPause {
		time.Sleep(d)
	}
}

// flush discards everything received and not yet read, here and in the
// link, so the next character read is the card's answer to what is sent
// next.
func (p *port) flush() error {
	p.rxr, p.rxw, p.rxErr = 0, 0, nil
	if err := p.link.Flush(); err != nil {
		return p.linkErr("flush", err)
	}
	return nil
}
