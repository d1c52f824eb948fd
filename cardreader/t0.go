package cardreader

import (
	"errors"
	"fmt"
	"time"
)

// T=0 procedure bytes and APDU-level status words.
const (
	procNull    = 0x60
	insGetResp  = 0xC0
	sw1MoreData = 0x61
	sw1WrongLe  = 0x6C
	maxGetResps = 64 // bound on 61xx chains
)

// t0 is the T=0 character protocol for one activated card.
type t0 struct {
	p        *port
	wt       time.Duration
	maxNulls int
	hdr      [5]byte
}

// transmit sends a short command APDU (cases 1-4) and writes the response
// data followed by SW1 SW2 into resp. It handles 61xx with GET RESPONSE and
// 6Cxx by re-issuing the command with the right Le.
func (c *t0) transmit(cmd, resp []byte) (int, error) {
	if len(cmd) < 4 || len(resp) < 2 {
		return 0, fmt.Errorf("%w: command of %d bytes, response buffer of %d", ErrAPDU, len(cmd), len(resp))
	}
	copy(c.hdr[:4], cmd[:4])
	var data []byte
	le, want := 0, 0 // le: bytes asked for in the header; want: Le of the APDU (0: none)
	switch {
	case len(cmd) == 4: // case 1
		c.hdr[4] = 0
	case len(cmd) == 5: // case 2
		c.hdr[4] = cmd[4]
		le = lenByte(cmd[4])
		want = le
	case cmd[4] != 0 && len(cmd) == 5+int(cmd[4]): // case 3
		c.hdr[4], data = cmd[4], cmd[5:]
	case cmd[4] != 0 && len(cmd) == 6+int(cmd[4]): // case 4, sent as case 3
		c.hdr[4], data = cmd[4], cmd[5:len(cmd)-1]
		want = lenByte(cmd[len(cmd)-1])
	default:
		return 0, fmt.Errorf("%w: %d-byte command with P3 %d is no short APDU case", ErrAPDU, len(cmd), cmd[4])
	}
	room := len(resp) - 2
	if le > room {
		return 0, fmt.Errorf("%w: Le %d exceeds the response buffer (%d)", ErrAPDU, le, room)
	}
	n, sw1, sw2, err := c.tpdu(data, resp[:le])
	if err != nil {
		return 0, err
	}
	if sw1 == sw1WrongLe && data == nil && len(cmd) == 5 { // case 2 with a wrong Le
		le = lenByte(sw2)
		if le > room {
			return 0, fmt.Errorf("%w: card offers %d bytes, response buffer holds %d", ErrAPDU, le, room)
		}
		c.hdr[4] = sw2
		if n, sw1, sw2, err = c.tpdu(nil, resp[:le]); err != nil {
			return 0, err
		}
	}
	if n, sw1, sw2, err = c.getResponses(cmd[0], resp, n, want, sw1, sw2); err != nil {
		return 0, err
	}
	resp[n], resp[n+1] = sw1, sw2
	return n + 2, nil
}

// getResponses follows 61xx with GET RESPONSE. Each asks for xx, or for
// what is left of the APDU's Le when that is less (ISO/IEC 7816-3 §12.2.4:
// the response never exceeds Le); once Le bytes are in, the card's last
// status word (maybe 61yy) ends the exchange. want 0 means no Le.
func (c *t0) getResponses(cla byte, resp []byte, n, want int, sw1, sw2 byte) (int, byte, byte, error) {
	room := len(resp) - 2
	for i := 0; sw1 == sw1MoreData; i++ {
		if i == maxGetResps {
			return 0, 0, 0, fmt.Errorf("%w: more than %d GET RESPONSE rounds", ErrProtocol, maxGetResps)
		}
		le := lenByte(sw2)
		if want > 0 {
			if n >= want {
				break
			}
			le = min(le, want-n)
		}
		if n+le > room {
			return 0, 0, 0, fmt.Errorf("%w: response exceeds the buffer (%d bytes)", ErrAPDU, room)
		}
		c.hdr = [5]byte{cla, insGetResp, 0, 0, byte(le)}
		m, s1, s2, err := c.tpdu(nil, resp[n:n+le])
		if err != nil {
			return 0, 0, 0, err
		}
		n, sw1, sw2 = n+m, s1, s2
	}
	return n, sw1, sw2, nil
}

// lenByte decodes P3/Le/SW2 as a length where 0 means 256.
func lenByte(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// tpdu runs one command TPDU (header in c.hdr): it sends data or receives
// into out as the procedure bytes direct and returns the bytes received and
// the status word.
func (c *t0) tpdu(data, out []byte) (n int, sw1, sw2 byte, err error) {
	c.p.waitTurn()
	if err := c.p.flush(); err != nil { // nothing stale may pass for a procedure byte
		return 0, 0, 0, err
	}
	if err := c.p.write(c.hdr[:]); err != nil {
		return 0, 0, 0, err
	}
	ins := c.hdr[1]
	sent, nulls := 0, 0
	for {
		b, err := c.p.readByte(c.wt)
		if err != nil {
			return 0, 0, 0, c.fail("procedure byte", err)
		}
		switch {
		case b == procNull:
			if nulls++; nulls > c.maxNulls {
				return 0, 0, 0, fmt.Errorf("%w: more than %d NULL procedure bytes", ErrProtocol, c.maxNulls)
			}
			continue
		case b&0xF0 == 0x60 || b&0xF0 == 0x90:
			sw2, err := c.p.readByte(c.wt)
			if err != nil {
				return 0, 0, 0, c.fail("SW2", err)
			}
			return n, b, sw2, nil
		case ackStep(b, ins) != 0:
			if sent, n, err = c.transfer(data, out, sent, n, ackStep(b, ins)); err != nil {
				return 0, 0, 0, err
			}
		default:
			return 0, 0, 0, fmt.Errorf("%w: unknown procedure byte %02X after INS %02X", ErrProtocol, b, ins)
		}
		nulls = 0
	}
}

// ackMask selects bits 1-3 of a procedure byte. Old cards answer INS XOR 01
// or INS XOR FE instead of INS or its complement; like OSCam, satd takes a
// byte whose bits 1-3 match INS as ACK and one whose bits 1-3 match the
// complement as a single-byte ACK. NULL and SW1 are recognised before.
const ackMask = 0x0E

// ackStep classifies procedure byte b after INS ins: -1 means ACK (all
// remaining data), 1 means single-byte ACK, 0 means no ACK.
func ackStep(b, ins byte) int {
	switch {
	case b == ins:
		return -1
	case b == ^ins:
		return 1
	case b&ackMask == ins&ackMask:
		return -1
	case b&ackMask == ^ins&ackMask:
		return 1
	}
	return 0
}

// transfer moves step bytes (-1: all remaining) in the direction of the
// TPDU after an ACK procedure byte.
func (c *t0) transfer(data, out []byte, sent, got, step int) (int, int, error) {
	if data != nil {
		left := len(data) - sent
		if step > 0 {
			left = min(left, step)
		}
		if left <= 0 {
			return 0, 0, fmt.Errorf("%w: ACK with no command data left", ErrProtocol)
		}
		if err := c.p.write(data[sent : sent+left]); err != nil {
			return 0, 0, err
		}
		return sent + left, got, nil
	}
	left := len(out) - got
	if step > 0 {
		left = min(left, step)
	}
	if left <= 0 {
		return 0, 0, fmt.Errorf("%w: ACK with no response data expected", ErrProtocol)
	}
	if err := c.p.readFull(out[got:got+left], c.wt, c.wt); err != nil {
		return 0, 0, c.fail("response data", err)
	}
	return sent, got + left, nil
}

// fail wraps a receive error, keeping the sentinel for removal.
// After a parity error the card goes on with the rest of its answer:
// the line is drained until quiet for WT so that the next header does not
// collide with it.
func (c *t0) fail(what string, err error) error {
	if errors.Is(err, ErrCardRemoved) {
		return err
	}
	if isLineErr(err) {
		if derr := c.p.drain(c.wt); errors.Is(derr, ErrCardRemoved) {
			return derr
		}
	}
	return fmt.Errorf("T=0 %s: %w", what, err)
}
