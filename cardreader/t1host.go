package cardreader

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/cardreader/t1"
	"satd.dev/satd/hal"
)

// errResynched reports that S(RESYNCH) succeeded: the APDU in flight is
// lost and is sent again.
var errResynched = errors.New("cardreader: T=1 resynchronised")

// t1Proto is the host side of the T=1 block protocol for one activated card,
// with the error recovery of ISO 7816-3 §11.6.
type t1Proto struct {
	p         *port
	edc       t1.EDC
	bwt, cwt  time.Duration
	ifsc      int // card's current information field size
	atrIFSC   int // IFSC from the ATR, restored by RESYNCH
	ifsd      int // size announced to the card
	retries   int // tries of one block before RESYNCH
	resynchs  int // RESYNCH attempts before giving up
	ns, nr    uint8
	sbuf      [t1.MaxBlockLen]byte
	rbuf      [t1.MaxBlockLen]byte
	counters  *Counters
	wtxFactor int
	writeErr  error // a failed send, reported by the next receive
	wantIFSD  byte
	ifsBuf    [1]byte
	// zeroNS is the T1Quirks.ZeroNS mode: every I-block goes out with
	// N(S) = 0 and the card's N(S) is not checked.
	zeroNS bool
	log    *slog.Logger // nil in tests of the engine alone
	// probeEDC is set while no block with a valid CRC has arrived: an EDC
	// error then makes the host try the other CRC variant (pcsc-lite's
	// byte order or ISO/IEC 13239), and onEDC remembers a switch.
	probeEDC bool
	onEDC    func(t1.EDC)
}

// sendNS returns the N(S) for the next I-block of the host.
func (c *t1Proto) sendNS() uint8 {
	if c.zeroNS {
		return 0
	}
	return c.ns
}

// transmit sends cmd and writes the card's answer (data and SW) into resp.
// After a successful RESYNCH the command is sent once more.
func (c *t1Proto) transmit(cmd, resp []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		n, err := c.exchange(cmd, resp)
		if err != errResynched {
			return n, err
		}
		if attempt == 1 {
			return 0, fmt.Errorf("%w: resynchronised twice for one command", ErrT1Dead)
		}
		if c.wantIFSD != 0 && c.wantIFSD != 32 {
			if err := c.announceIFSD(c.wantIFSD); err != nil {
				return 0, err
			}
		}
	}
}

// lastI describes the I-block the host sent last.
type lastI struct {
	off, n int
	more   bool
	ns     uint8
}

// exchange runs one command/response through the block protocol.
func (c *t1Proto) exchange(cmd, resp []byte) (int, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("%w: empty command", ErrAPDU)
	}
	cur := lastI{n: min(c.ifsc, len(cmd)), ns: c.sendNS()}
	cur.more = cur.n < len(cmd)
	c.sendBlock(t1.IPCB(cur.ns, cur.more), cmd[:cur.n])
	got, errs, acked := 0, 0, false
	for {
		blk, err := c.recvBlock()
		if err != nil {
			if errors.Is(err, ErrCardRemoved) {
				return 0, err
			}
			if errs++; errs > c.retries {
				return 0, c.resynch(err)
			}
			c.sendR(rCode(err))
			continue
		}
		switch blk.Kind() {
		case t1.RBlock:
			switch {
			case !acked && blk.NR() == cur.ns: // the card asks for our block again
				if errs++; errs > c.retries {
					return 0, c.resynch(fmt.Errorf("%w: block N(S)=%d refused %d times", ErrProtocol, cur.ns, errs))
				}
				c.counters.Retransmits.Add(1)
				c.sendBlock(t1.IPCB(cur.ns, cur.more), cmd[cur.off:cur.off+cur.n])
			case !acked && cur.more: // chained block acknowledged: send the next
				errs = 0
				c.ns ^= 1
				cur = lastI{off: cur.off + cur.n, ns: c.sendNS()}
				cur.n = min(c.ifsc, len(cmd)-cur.off)
				cur.more = cur.off+cur.n < len(cmd)
				c.sendBlock(t1.IPCB(cur.ns, cur.more), cmd[cur.off:cur.off+cur.n])
			default:
				if errs++; errs > c.retries {
					return 0, c.resynch(fmt.Errorf("%w: unexpected R-block %02X", ErrProtocol, blk.PCB))
				}
				c.sendR(t1.ROtherErr)
			}
		case t1.IBlock:
			if (!acked && cur.more) || (blk.NS() != c.nr && !c.zeroNS) {
				if errs++; errs > c.retries {
					return 0, c.resynch(fmt.Errorf("%w: unexpected I-block %02X", ErrProtocol, blk.PCB))
				}
				c.sendR(t1.ROtherErr)
				continue
			}
			if !acked {
				acked = true
				c.ns ^= 1
			}
			if c.nr ^= 1; c.zeroNS {
				c.nr = 0 // the card numbers every block 0
			}
			errs = 0
			if got+len(blk.Inf) > len(resp) {
				c.abortChain(blk.More())
				return 0, fmt.Errorf("%w: response exceeds the buffer (%d bytes)", ErrAPDU, len(resp))
			}
			got += copy(resp[got:], blk.Inf)
			if !blk.More() {
				if got < 2 {
					return 0, fmt.Errorf("%w: response of %d bytes has no status word", ErrProtocol, got)
				}
				return got, nil
			}
			c.sendR(t1.ROK)
		case t1.SBlock:
			if blk.SFunc() == t1.SAbort && !blk.IsResponse() {
				return 0, c.cardAbort(acked)
			}
			if err := c.cardRequest(blk); err != nil {
				return 0, err
			}
		}
	}
}

// cardRequest answers an S-block request from the card.
func (c *t1Proto) cardRequest(blk t1.Block) error {
	if blk.IsResponse() {
		c.sendR(t1.ROtherErr)
		return nil
	}
	switch blk.SFunc() {
	case t1.SWTX:
		c.wtxFactor = max(1, int(blk.Inf[0]))
		c.counters.WTX.Add(1)
		c.sendBlock(t1.SPCB(t1.SWTX, true), blk.Inf)
	case t1.SIFS:
		c.ifsc = int(blk.Inf[0])
		c.sendBlock(t1.SPCB(t1.SIFS, true), blk.Inf)
	default: // RESYNCH and VPP error requests are not the card's to send
		c.sendR(t1.ROtherErr)
	}
	return nil
}

// cardAbort answers the card's S(ABORT request) and then waits for the
// card's next block (ISO/IEC 7816-3 §11.6.3.2 rule 9: after the response
// an R-block may hand the right to send back), so the next command does not
// collide with it. The block only sets the sequence numbers; the command
// ends with ErrAborted either way.
func (c *t1Proto) cardAbort(acked bool) error {
	c.sendBlock(t1.SPCB(t1.SAbort, true), nil)
	blk, err := c.recvBlock()
	switch {
	case errors.Is(err, ErrCardRemoved):
		return err
	case err != nil:
		return fmt.Errorf("%w (no block after S(ABORT response): %w)", ErrAborted, err)
	case blk.Kind() == t1.RBlock:
		c.ns = blk.NR() // the N(S) the card expects next
	case blk.Kind() == t1.IBlock:
		if !acked {
			c.ns ^= 1 // the card answered our block
		}
		if blk.NS() == c.nr {
			c.nr ^= 1
		}
	}
	return ErrAborted
}

// abortChain stops a card chain the buffer cannot hold.
func (c *t1Proto) abortChain(more bool) {
	if !more {
		return
	}
	c.sendBlock(t1.SPCB(t1.SAbort, false), nil)
	if _, err := c.recvBlock(); err != nil {
		c.p.drain(c.cwt)
	}
}

// rCode returns the R-block error code for a receive error.
func rCode(err error) byte {
	if errors.Is(err, t1.ErrEDC) || errors.Is(err, hal.ErrParity) || errors.Is(err, hal.ErrFraming) {
		return t1.REDCError
	}
	return t1.ROtherErr
}

// resynch runs S(RESYNCH) up to c.resynchs times after cause; success resets
// both sides' sequence numbers and sizes and returns errResynched.
func (c *t1Proto) resynch(cause error) error {
	for range c.resynchs {
		c.counters.Resynchs.Add(1)
		c.sendBlock(t1.SPCB(t1.SResynch, false), nil)
		blk, err := c.recvBlock()
		if err == nil && blk.Kind() == t1.SBlock && blk.PCB == t1.SPCB(t1.SResynch, true) {
			c.ns, c.nr = 0, 0
			c.ifsc, c.ifsd = c.atrIFSC, 32
			return errResynched
		}
		if errors.Is(err, ErrCardRemoved) {
			return err
		}
	}
	return fmt.Errorf("%w: after %d RESYNCH attempts: %w", ErrT1Dead, c.resynchs, cause)
}

// announceIFSD sends S(IFS request, want) and expects the echo. A card
// that refuses or does not answer is no reason to drop it (OSCam goes on
// too): the refusal is logged and IFSD stays at the default 32. Only the
// removal of the card is an error.
func (c *t1Proto) announceIFSD(want byte) error {
	c.wantIFSD = want
	c.ifsBuf[0] = want
	var last error
	for range c.retries + 1 {
		c.sendBlock(t1.SPCB(t1.SIFS, false), c.ifsBuf[:])
		blk, err := c.recvBlock()
		switch {
		case errors.Is(err, ErrCardRemoved):
			return err
		case err != nil:
			last = err
			continue
		case blk.PCB == t1.SPCB(t1.SIFS, true) && blk.Inf[0] == want:
			c.ifsd = int(want)
			return nil
		}
		last = fmt.Errorf("answered with block %02X % X", blk.PCB, blk.Inf)
		if blk.Kind() != t1.RBlock {
			break // a clear refusal; an R-block asks for the request again
		}
	}
	c.ifsd = iso7816.DefaultIFSD
	c.wantIFSD = 0 // do not ask again after RESYNCH
	c.counters.IFSRefusals.Add(1)
	if c.log != nil {
		c.log.Warn("T=1 card did not confirm S(IFS); going on with IFSD 32", "ifsd", want, "err", last)
	}
	return nil
}

// sendBlock encodes and sends a block after the block guard time. A write
// error surfaces on the following receive.
func (c *t1Proto) sendBlock(pcb byte, inf []byte) {
	b := t1.Append(c.sbuf[:0], 0, pcb, inf, c.edc)
	c.p.waitTurn() // BGT after the card's last character
	err := c.p.flush()
	if err == nil {
		err = c.p.write(b)
	}
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
}

// sendR sends an R-block asking for the card's next block.
func (c *t1Proto) sendR(code byte) { c.sendBlock(t1.RPCB(c.nr, code), nil) }

// recvBlock reads one block within BWT (times a pending WTX factor) and CWT,
// then decodes it. After any error in a block that had begun the line is
// drained until it has been quiet for CWT, so the answer does not collide
// with characters the card is still sending and the next block starts in
// step.
func (c *t1Proto) recvBlock() (t1.Block, error) {
	if err := c.writeErr; err != nil {
		c.writeErr = nil
		return t1.Block{}, err
	}
	bwt := c.bwt * time.Duration(c.wtxFactor)
	c.wtxFactor = 1
	pro := c.rbuf[:t1.PrologueLen]
	lineErr := c.p.readFull(pro, bwt, c.cwt)
	if lineErr != nil && !isLineErr(lineErr) {
		return t1.Block{}, c.recvFail(lineErr)
	}
	if pro[2] == 0xFF {
		return t1.Block{}, c.recvFail(fmt.Errorf("%w: LEN FF", t1.ErrFormat))
	}
	n := t1.BlockLen(pro[2], c.edc)
	if err := c.p.readFull(c.rbuf[t1.PrologueLen:n], c.cwt, c.cwt); err != nil {
		if !isLineErr(err) {
			return t1.Block{}, c.recvFail(err)
		}
		lineErr = err
	}
	if lineErr != nil {
		return t1.Block{}, c.recvFail(lineErr)
	}
	blk, err := t1.Decode(c.rbuf[:n], c.edc)
	if err != nil && c.probeEDC && errors.Is(err, t1.ErrEDC) {
		blk, err = c.tryOtherCRC(n)
	}
	if err != nil {
		return t1.Block{}, c.recvFail(err)
	}
	c.probeEDC = false
	return blk, nil
}

// tryOtherCRC decodes the n-byte block in rbuf with the other CRC variant
// and keeps that variant for the card when it fits.
func (c *t1Proto) tryOtherCRC(n int) (t1.Block, error) {
	other := t1.CRCX25
	if c.edc == t1.CRCX25 {
		other = t1.CRCCCID
	}
	blk, err := t1.Decode(c.rbuf[:n], other)
	if err != nil {
		return t1.Block{}, err
	}
	if c.log != nil {
		c.log.Info("T=1 card uses the other CRC variant", "crc", crcName(other))
	}
	c.edc = other
	if c.onEDC != nil {
		c.onEDC(other)
	}
	return blk, nil
}

// crcName is the t1_crc option value of a CRC variant.
func crcName(e t1.EDC) string {
	if e == t1.CRCX25 {
		return "x25"
	}
	return "ccid"
}

// recvFail drains a partial block so the next one starts in step. Nothing
// is drained when not even the first character came (BWT ran out).
func (c *t1Proto) recvFail(err error) error {
	if errors.Is(err, ErrCardRemoved) {
		return err
	}
	if !errors.Is(err, ErrMute) || !c.p.lastRx.IsZero() {
		if derr := c.p.drain(c.cwt); derr != nil {
			return derr
		}
	}
	return err
}
