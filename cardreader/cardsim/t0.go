package cardsim

import "time"

// serveT0 handles one T=0 command whose first header byte is cla.
func (s *Sim) serveT0(cla byte) error {
	s.hdr[0] = cla
	if err := s.readFull(s.hdr[1:]); err != nil {
		return err
	}
	s.C.Commands.Add(1)
	h := s.hdr[:]
	ins, p3 := h[1], h[4]
	if ins == 0xC0 && s.pending != nil {
		return s.getResponse(int(p3))
	}
	s.pending = nil
	if s.cfg.Personality.DataIn(h) {
		return s.dataIn(h)
	}
	s.slow()
	n := s.cfg.Personality.Respond(h, s.resp)
	data, sw := s.resp[:n-2], s.resp[n-2:n]
	le := lenByte(p3)
	switch {
	case len(data) == 0:
		return s.procedure(sw...)
	case le != len(data):
		return s.procedure(0x6C, byte(len(data)))
	}
	if err := s.sendData(ins, data); err != nil {
		return err
	}
	return s.sendFaulty(sw)
}

func lenByte(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// dataIn receives the P3 command bytes as the ACK mode directs, then
// answers with SW or 61xx for response data.
func (s *Sim) dataIn(h []byte) error {
	ins, lc := h[1], int(h[4])
	s.apdu = append(s.apdu[:0], h...)
	for got := 0; got < lc; {
		proc, step := s.cfg.T0Ack.ack(ins)
		if step == 0 {
			step = lc - got
		}
		if err := s.procedure(proc); err != nil {
			return err
		}
		for range step {
			b, err := s.read(hostByteTimeout)
			if err != nil {
				return err
			}
			s.apdu = append(s.apdu, b)
		}
		got += step
	}
	s.slow()
	n := s.cfg.Personality.Respond(s.apdu, s.resp)
	data, sw := s.resp[:n-2], s.resp[n-2:n]
	if len(data) == 0 || sw[0] != 0x90 || sw[1] != 0x00 {
		return s.procedure(sw...)
	}
	s.pending = append(s.pendingBuf[:0], data...)
	return s.procedure(0x61, byte(min(len(s.pending), s.cfg.T0Chunk)))
}

// getResponse hands out pending data in chunks of at most T0Chunk.
func (s *Sim) getResponse(le int) error {
	le = lenByte(byte(le))
	avail := min(len(s.pending), s.cfg.T0Chunk)
	if le != avail {
		return s.procedure(0x6C, byte(avail))
	}
	chunk := s.pending[:le]
	s.pending = s.pending[le:]
	if err := s.sendData(0xC0, chunk); err != nil {
		return err
	}
	if len(s.pending) == 0 {
		s.pending = nil
		return s.sendFaulty(s.sw(0x90, 0x00))
	}
	return s.sendFaulty(s.sw(0x61, byte(min(len(s.pending), s.cfg.T0Chunk))))
}

// sw returns a 2-byte status word in a reused buffer.
func (s *Sim) sw(sw1, sw2 byte) []byte {
	s.hdr[0], s.hdr[1] = sw1, sw2
	return s.hdr[:2]
}

// sendData sends response data after ACK procedure bytes.
func (s *Sim) sendData(ins byte, data []byte) error {
	proc, step := s.cfg.T0Ack.ack(ins)
	if step == 1 {
		for i := range data {
			if err := s.procedure(proc); err != nil {
				return err
			}
			if err := s.send(data[i : i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.procedure(proc); err != nil {
		return err
	}
	return s.sendFaulty(data)
}

// procedure sends the configured NULL bytes, then the procedure bytes p.
func (s *Sim) procedure(p ...byte) error {
	for range s.cfg.T0Nulls {
		s.gap()
		s.one[0] = 0x60
		if err := s.send(s.one[:]); err != nil {
			return err
		}
	}
	if s.cfg.T0Nulls > 0 {
		s.gap()
	}
	if len(p) == 2 {
		return s.sendFaulty(s.sw(p[0], p[1]))
	}
	s.one[0] = p[0]
	return s.send(s.one[:])
}

// gap sleeps T0NullGap.
func (s *Sim) gap() {
	if s.cfg.T0NullGap > 0 {
		time.Sleep(s.cfg.T0NullGap)
	}
}
