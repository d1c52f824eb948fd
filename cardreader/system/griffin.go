package system

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"satd.dev/satd/cardreader"
)

// Griffin operations, added to the command base. Every command is
// DC <base+op> 00 00 <Lc> [data]; the card answers 90 LL and the answer is
// read with the fixed DC <base-0E> 00 00 LL. Answers are <code> <len>
// <data> records.
const (
	griffinCLA         = 0xDC
	griffinInit        = 0x00 // 11 01 <base>
	griffinHexSerial   = 0x02 // 12 04 <serial>
	griffinASCIISerial = 0x04 // 13 0C <12 ASCII>
	griffinCAID        = 0x06 // 14 02 <CAID>
	griffinAddresses   = 0x08 // 15 30 <addresses>
	griffinSubs        = 0x20 // subscriptions
	griffinECM         = 0x16 // whole section → 19 04 … 1A 10 <CWs>
	griffinReadOffset  = 0x0E // the read command is base - 0E
	griffinCWCode      = 0x1A
)

// griffinExtra are the further init operations OSCam sends after the
// addresses; their answers are read and not used.
var griffinExtra = [...]byte{0x22, 0x10, 0x14}

const (
	reasonGriffinNoCW  = "Griffin card answered without control words"
	reasonGriffinShort = "Griffin answer has no 1A 10 control-word record"
	reasonGriffinRead  = "Griffin card did not hand out the announced answer"
	reasonGriffinLen   = "ECM section length does not fit a Griffin command"
)

// Griffin is the Griffin card system (T=0, CAID 55xx): plain CWs.
type Griffin struct {
	identityBox
	o    Options
	hang hangWatch
	base byte
	cmd  [261]byte
	resp [260]byte
}

var _ System = (*Griffin)(nil)

// NewGriffin returns a Griffin system for one slot.
func NewGriffin(o Options) *Griffin { return &Griffin{o: o} }

// Name returns "griffin".
func (*Griffin) Name() string { return "griffin" }

// Identify accepts ATRs of at least 10 bytes 3B 08 <caid-lo> 01
// <serial:4> <base> 00.
func (*Griffin) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	r := c.ATR().Raw
	return len(r) >= 10 && r[0] == 0x3B && r[1] == 0x08 && r[3] == 0x01 && r[9] == 0x00, nil
}

// Init runs the init operations: the base from op 00, the serial (checked
// against the ATR), the ASCII serial, the CAID, the addresses, three
// further operations and the subscriptions (whose failure is not fatal).
func (x *Griffin) Init(_ context.Context, c cardreader.Card) error {
	r := c.ATR().Raw
	x.base = r[8]
	id := Identity{System: "griffin", CAID: 0x5500 | uint16(r[2]), Providers: []uint32{0}, Serial: hexSerial(r[4:8])}
	b, err := x.exec(c, griffinInit, 0x11, 1)
	if err != nil {
		return err
	}
	x.base = b[0]
	if b, err = x.exec(c, griffinHexSerial, 0x12, 4); err != nil {
		return err
	}
	if hexSerial(b[:4]) != id.Serial {
		return fmt.Errorf("%w: Griffin serial %X differs from the ATR's %s", ErrCard, b[:4], id.Serial)
	}
	if b, err = x.exec(c, griffinASCIISerial, 0x13, 12); err != nil {
		return err
	}
	if s := strings.TrimRight(string(b[:12]), " \x00"); s != "" {
		id.Serial += " (" + s + ")"
	}
	if b, err = x.exec(c, griffinCAID, 0x14, 2); err != nil {
		return err
	}
	id.CAID = be16(b)
	if _, err = x.exec(c, griffinAddresses, 0x15, 0); err != nil {
		return err
	}
	for _, op := range griffinExtra {
		if _, err := x.run(c, op, nil); err != nil && !errors.Is(err, ErrCard) {
			return err
		}
	}
	if _, err := x.run(c, griffinSubs, nil); err != nil && !errors.Is(err, ErrCard) {
		return err
	}
	x.hang.explained()
	x.set(id)
	return nil
}

// exec runs an init operation whose answer must start with record code
// with at least min data bytes, and returns that record's data.
func (x *Griffin) exec(c Transmitter, op, code byte, min int) ([]byte, error) {
	b, err := x.run(c, op, nil)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != code || int(b[1]) < min || 2+int(b[1]) > len(b) {
		return nil, fmt.Errorf("%w: Griffin DC %02X answered % X, want record %02X with %d bytes", ErrCard, x.base+op, b, code, min)
	}
	return b[2 : 2+int(b[1])], nil
}

// run sends DC <base+op> 00 00 <Lc> [data] and reads the announced answer.
func (x *Griffin) run(c Transmitter, op byte, data []byte) ([]byte, error) {
	sw1, sw2, err := x.send(c, op, data)
	if err != nil {
		return nil, err
	}
	if sw1 != 0x90 {
		return nil, statusError(fmt.Sprintf("DC %02X", x.base+op), sw1, sw2)
	}
	return x.readAnswer(c, sw2)
}

// send transmits DC <base+op> 00 00 <Lc> [data] and returns the status
// word.
func (x *Griffin) send(c Transmitter, op byte, data []byte) (byte, byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = griffinCLA, x.base+op, 0, 0, byte(len(data))
	n, err := c.Transmit(x.cmd[:5+copy(x.cmd[5:], data)], x.resp[:])
	if err != nil {
		return 0, 0, err
	}
	return x.resp[n-2], x.resp[n-1], nil
}

// readAnswer reads n answer bytes with DC <base-0E> 00 00 n.
func (x *Griffin) readAnswer(c Transmitter, n byte) ([]byte, error) {
	if n == 0 {
		return x.resp[:0], nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = griffinCLA, x.base-griffinReadOffset, 0, 0, n
	m, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, err
	}
	if x.resp[m-2] != 0x90 || x.resp[m-1] != 0 || m-2 != int(n) {
		return nil, fmt.Errorf("%w: Griffin read DC %02X gave %d bytes and %02X %02X", ErrCard, x.cmd[1], m-2, x.resp[m-2], x.resp[m-1])
	}
	return x.resp[:m-2], nil
}

// ECM sends the whole section with op 16, reads the answer and takes the
// CWs from its 1A 10 record (answer bytes 8..23 in the usual layout).
func (x *Griffin) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 4 || n > 255 {
		return refuse(BadECM, reasonGriffinLen), nil
	}
	sw1, sw2, err := x.send(t, griffinECM, ecm[:n])
	if err != nil {
		return transportError(err)
	}
	switch {
	case sw1 == 0x90 && sw2 == 0:
		x.hang.explained()
		return refuse(NotFound, reasonGriffinNoCW), nil
	case sw1 != 0x90:
		return x.hang.status(t, sw1, sw2), nil
	}
	b, err := x.readAnswer(t, sw2)
	switch {
	case errors.Is(err, ErrCard):
		x.hang.unexplained(t)
		return refuse(CardError, reasonGriffinRead), nil
	case err != nil:
		return transportError(err)
	}
	x.hang.explained()
	for len(b) >= 2 && 2+int(b[1]) <= len(b) {
		code, v := b[0], b[2:2+b[1]]
		b = b[2+b[1]:]
		if code == griffinCWCode && len(v) == 16 {
			var cw [16]byte
			copy(cw[:], v)
			return found(x.o.Policy, &cw), nil
		}
	}
	return refuse(NotFound, reasonGriffinShort), nil
}
