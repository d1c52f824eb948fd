package system

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"satd.dev/satd/cardreader"
)

// Griffin operations, added to the command base byte from the ATR. Every
// command is DC <base+op> 00 00 [Lc data]; the card answers 90 LL and the
// answer is read with DC <base+op+1> 00 00 LL.
const (
	griffinCLA         = 0xDC
	griffinInit        = 0x00
	griffinHexSerial   = 0x02
	griffinASCIISerial = 0x04
	griffinCAID        = 0x06
	griffinECM         = 0x16
	griffinCWOffset    = 8
)

// Griffin is the Griffin card system (T=0, CAID 55xx): plain CWs.
type Griffin struct {
	identityBox
	base byte
	cmd  [261]byte
	resp [260]byte
}

var _ System = (*Griffin)(nil)

// NewGriffin returns a Griffin system for one slot.
func NewGriffin() *Griffin { return &Griffin{} }

// Name returns "griffin".
func (*Griffin) Name() string { return "griffin" }

// Identify accepts the ATR 3B 08 <caid-lo> 01 <serial:4> <base> 00.
func (*Griffin) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	r := c.ATR().Raw
	return len(r) == 10 && r[0] == 0x3B && r[1] == 0x08 && r[3] == 0x01 && r[9] == 0x00, nil
}

// Init takes CAID, serial and command base from the ATR, runs the init
// command and checks the serial and CAID the card reports.
func (x *Griffin) Init(_ context.Context, c cardreader.Card) error {
	r := c.ATR().Raw
	x.base = r[8]
	id := Identity{System: "griffin", CAID: 0x5500 | uint16(r[2]), Providers: []uint32{0}, Serial: hexSerial(r[4:8])}
	if _, err := x.exec(c, griffinInit, nil); err != nil {
		return err
	}
	b, err := x.exec(c, griffinHexSerial, nil)
	if err != nil {
		return err
	}
	if hexSerial(b) != id.Serial {
		return fmt.Errorf("%w: Griffin serial %X differs from the ATR's %s", ErrCard, b, id.Serial)
	}
	if b, err = x.exec(c, griffinASCIISerial, nil); err != nil {
		return err
	}
	if s := strings.TrimRight(string(b), " \x00"); s != "" {
		id.Serial += " (" + s + ")"
	}
	if b, err = x.exec(c, griffinCAID, nil); err != nil {
		return err
	}
	if len(b) < 2 || be16(b) != id.CAID {
		return fmt.Errorf("%w: Griffin CAID answer % X differs from the ATR's %04X", ErrCard, b, id.CAID)
	}
	x.set(id)
	return nil
}

// exec sends one init command and reads its answer.
func (x *Griffin) exec(c Transmitter, op byte, data []byte) ([]byte, error) {
	sw1, sw2, err := x.send(c, op, data)
	if err != nil {
		return nil, err
	}
	if sw1 != 0x90 {
		return nil, statusError(fmt.Sprintf("DC %02X", x.base+op), sw1, sw2)
	}
	return x.readAnswer(c, op, sw2)
}

// send transmits DC <base+op> 00 00 [Lc data] and returns the status word.
func (x *Griffin) send(c Transmitter, op byte, data []byte) (byte, byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3] = griffinCLA, x.base+op, 0, 0
	cmd := x.cmd[:4]
	if len(data) > 0 {
		x.cmd[4] = byte(len(data))
		cmd = x.cmd[:5+copy(x.cmd[5:], data)]
	}
	n, err := c.Transmit(cmd, x.resp[:])
	if err != nil {
		return 0, 0, err
	}
	return x.resp[n-2], x.resp[n-1], nil
}

// readAnswer reads n answer bytes with DC <base+op+1>.
func (x *Griffin) readAnswer(c Transmitter, op, n byte) ([]byte, error) {
	if n == 0 {
		return x.resp[:0], nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = griffinCLA, x.base+op+1, 0, 0, n
	m, err := c.Transmit(x.cmd[:5], x.resp[:])
	if err != nil {
		return nil, err
	}
	if x.resp[m-2] != 0x90 || x.resp[m-1] != 0 || m-2 != int(n) {
		return nil, fmt.Errorf("%w: Griffin read DC %02X gave %d bytes and %02X %02X", ErrCard, x.base+op+1, m-2, x.resp[m-2], x.resp[m-1])
	}
	return x.resp[:m-2], nil
}

// ECM sends the whole section with DC <base+16> and reads the CWs at
// offset 8 of the answer.
func (x *Griffin) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 4 || n > 255 {
		return refuse(BadECM, "ECM section length does not fit a Griffin command"), nil
	}
	sw1, sw2, err := x.send(t, griffinECM, ecm[:n])
	if err != nil {
		return transportError(err)
	}
	switch {
	case sw1 == 0x90 && sw2 == 0:
		return refuse(NotFound, "Griffin card answered without control words"), nil
	case sw1 != 0x90:
		return commonStatus(sw1, sw2), nil
	case sw2 < griffinCWOffset+16:
		return refuse(CardError, "Griffin answer too short for two control words"), nil
	}
	b, err := x.readAnswer(t, griffinECM, sw2)
	switch {
	case errors.Is(err, ErrCard):
		return refuse(CardError, "Griffin card did not hand out the announced answer"), nil
	case err != nil:
		return transportError(err)
	}
	var a Answer
	copy(a.CW[:], b[griffinCWOffset:griffinCWOffset+16])
	return a, nil
}
