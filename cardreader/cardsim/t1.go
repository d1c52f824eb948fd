package cardsim

import (
	"errors"

	"satd.dev/satd/cardreader/t1"
)

// serveT1 reads the rest of a block whose NAD is nad and handles it.
func (s *Sim) serveT1(nad byte) error {
	var blk [t1.MaxBlockLen]byte
	blk[0] = nad
	if err := s.readFull(blk[1:3]); err != nil {
		return err
	}
	n := t1.BlockLen(blk[2], s.edc)
	if blk[2] == 0xFF {
		return s.sendR(t1.ROtherErr)
	}
	if err := s.readFull(blk[3:n]); err != nil {
		return err
	}
	b, err := t1.Decode(blk[:n], s.edc)
	if err != nil {
		if errors.Is(err, t1.ErrEDC) {
			return s.sendR(t1.REDCError)
		}
		return s.sendR(t1.ROtherErr)
	}
	switch b.Kind() {
	case t1.IBlock:
		return s.hostI(b)
	case t1.RBlock:
		s.C.RBlocksIn.Add(1)
		return s.hostR(b)
	}
	return s.hostS(b)
}

// hostI takes one I-block of the host's command.
func (s *Sim) hostI(b t1.Block) error {
	switch {
	case s.cfg.T1ZeroNS && (s.sending || b.NS() != 0):
		return s.sendR(t1.ROtherErr)
	case s.cfg.T1ZeroNS:
	case s.sending || b.NS() != s.nr:
		return s.sendR(t1.ROtherErr)
	}
	if s.nr ^= 1; s.cfg.T1ZeroNS {
		s.nr = 0
	}
	s.apdu = append(s.apdu, b.Inf...)
	if b.More() {
		return s.sendR(t1.ROK)
	}
	s.C.Commands.Add(1)
	if s.cfg.WTX > 0 {
		if err := s.askWTX(); err != nil {
			return err
		}
	}
	s.slow()
	n := s.cfg.Personality.Respond(s.apdu, s.resp)
	s.apdu = s.apdu[:0]
	s.chain = s.resp[:n]
	return s.sendChunk()
}

// askWTX sends S(WTX request) and waits for the host's response.
func (s *Sim) askWTX() error {
	s.one[0] = s.cfg.WTX
	if err := s.sendBlock(t1.SPCB(t1.SWTX, false), s.one[:]); err != nil {
		return err
	}
	var blk [8]byte
	if err := s.readFull(blk[:3]); err != nil {
		return err
	}
	n := t1.BlockLen(blk[2], s.edc)
	if n > len(blk) {
		return nil
	}
	if err := s.readFull(blk[3:n]); err != nil {
		return err
	}
	if b, err := t1.Decode(blk[:n], s.edc); err == nil && b.PCB == t1.SPCB(t1.SWTX, true) {
		s.C.WTXResps.Add(1)
	}
	return nil
}

// sendChunk sends the next I-block of the response chain.
func (s *Sim) sendChunk() error {
	n := min(len(s.chain), s.ifsd)
	more := n < len(s.chain)
	s.sending = more
	inf := s.chain[:n]
	s.chain = s.chain[n:]
	s.lastNS = s.ns
	s.ns ^= 1
	if s.cfg.T1ZeroNS {
		s.lastNS, s.ns = 0, 0
	}
	return s.sendBlock(t1.IPCB(s.lastNS, more), inf)
}

// hostR handles an R-block: acknowledgement of a chained block, or a
// request to send the last block again.
func (s *Sim) hostR(b t1.Block) error {
	switch {
	case s.sending && b.NR() == s.ns && b.RErr() == t1.ROK:
		return s.sendChunk()
	case len(s.last) > 0 && b.NR() == s.lastNS:
		s.C.Retransmits.Add(1)
		return s.sendFaulty(s.last)
	}
	return s.sendR(t1.ROK) // waiting for an I-block: ask for it
}

// hostS handles S-block requests from the host.
func (s *Sim) hostS(b t1.Block) error {
	if b.IsResponse() {
		return s.sendR(t1.ROtherErr)
	}
	switch b.SFunc() {
	case t1.SResynch:
		s.C.Resynchs.Add(1)
		s.ns, s.nr, s.lastNS, s.ifsd = 0, 0, 1, 32
		s.chain, s.sending, s.apdu = nil, false, s.apdu[:0]
		s.last = s.last[:0]
		return s.sendBlock(t1.SPCB(t1.SResynch, true), nil)
	case t1.SIFS:
		s.C.IFSReqs.Add(1)
		switch s.cfg.IFS {
		case IFSIgnore:
			return nil
		case IFSRefuse:
			return s.sendR(t1.ROtherErr)
		}
		s.ifsd = int(b.Inf[0])
		s.C.LastIFSD.Store(int64(s.ifsd))
		return s.sendBlock(t1.SPCB(t1.SIFS, true), b.Inf)
	case t1.SAbort:
		s.chain, s.sending, s.apdu = nil, false, s.apdu[:0]
		return s.sendBlock(t1.SPCB(t1.SAbort, true), nil)
	}
	return s.sendR(t1.ROtherErr)
}

// sendR asks the host for its next block (N(R) = expected N(S)).
func (s *Sim) sendR(code byte) error {
	return s.sendBlock(t1.RPCB(s.nr, code), nil)
}

// sendBlock encodes a block, remembers it for retransmission and sends it
// with the next injected fault.
func (s *Sim) sendBlock(pcb byte, inf []byte) error {
	s.last = t1.Append(s.last[:0], 0, pcb, inf, s.edc)
	return s.sendFaulty(s.last)
}
