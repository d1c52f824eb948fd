package system

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"satd.dev/satd/cardreader"
)

// Conax command bytes (class DD) and the nanos satd reads.
const (
	conaxCLA       = 0xDD
	conaxParams    = 0x26 // read parameters: version, CAID, pairing mode
	conaxSerial    = 0x82 // unique and shared addresses
	conaxInfo      = 0xC6 // subscription records
	conaxECM       = 0xA2 // ECM wrapped in nano 14
	conaxRead      = 0xCA // read answer while the card says 98 xx
	conaxMoreData  = 0x98
	conaxMaxRounds = 16 // bound on 98 xx read rounds

	nanoVersion = 0x20
	nanoCAID    = 0x28
	nanoPairing = 0x2F
	nanoAddress = 0x23
	nanoSub     = 0x32
	nanoECM     = 0x14
	nanoCW      = 0x25
	nanoAccess  = 0x31
	nanoRSACW   = 0x30

	conaxCWNanoLen = 0x0D
)

var conaxHistorical = []byte("0B00")

// Conax is the Conax card system for unpaired cards (T=0, CAID 0Bxx).
type Conax struct {
	identityBox
	cmd  [260]byte
	resp [260]byte
}

var _ System = (*Conax)(nil)

// NewConax returns a Conax system for one slot.
func NewConax() *Conax { return &Conax{} }

// Name returns "conax".
func (*Conax) Name() string { return "conax" }

// Identify accepts cards whose historical bytes start with ASCII "0B00".
func (*Conax) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	return bytes.HasPrefix(c.ATR().Historical, conaxHistorical), nil
}

// Init reads parameters, serial and subscriptions. A paired card is refused
// with ErrNotSupported.
func (x *Conax) Init(_ context.Context, c cardreader.Card) error {
	id := Identity{System: "conax", Providers: []uint32{0}}
	paired := -1
	err := x.exchange(c, []byte{conaxCLA, conaxParams, 0, 0, 3, 0x10, 0x01, 0x40}, "DD 26", func(tag byte, v []byte) {
		switch {
		case tag == nanoCAID && len(v) >= 2:
			id.CAID = be16(v)
		case tag == nanoPairing && len(v) >= 1:
			paired = int(v[0])
		}
	})
	if err != nil {
		return err
	}
	if id.CAID>>8 != 0x0B {
		return fmt.Errorf("%w: DD 26 gave CAID %04X, want 0Bxx", ErrCard, id.CAID)
	}
	if paired > 0 {
		return fmt.Errorf("%w: paired Conax card (pairing mode %d in DD 26 answer): its control words come RSA- or 3DES-wrapped and need host keys", ErrNotSupported, paired)
	}
	err = x.exchange(c, []byte{conaxCLA, conaxSerial, 0, 0, 3, 0x11, 0x12, 0x01}, "DD 82", func(tag byte, v []byte) {
		if tag == nanoAddress && len(v) >= 6 && v[0] == 0 {
			id.Serial = strconv.FormatUint(uint64(v[2])<<24|uint64(v[3])<<16|uint64(v[4])<<8|uint64(v[5]), 10)
		}
	})
	if err != nil {
		return err
	}
	err = x.exchange(c, []byte{conaxCLA, conaxInfo, 0, 0, 3, 0x1C, 0x01, 0x00}, "DD C6", func(tag byte, v []byte) {
		if tag == nanoSub && len(v) >= 21 {
			id.Subscriptions = append(id.Subscriptions, Subscription{
				ID: be16(v), Name: strings.TrimRight(string(v[2:17]), " \x00"),
				Start: ConaxDate(v[17], v[18]), End: ConaxDate(v[19], v[20]),
			})
		}
	})
	if err != nil {
		return err
	}
	x.set(id)
	return nil
}

// exchange sends cmd and reads the answer while the card says 98 xx,
// handing each nano to f.
func (x *Conax) exchange(c Transmitter, cmd []byte, name string, f func(tag byte, v []byte)) error {
	n, err := c.Transmit(cmd, x.resp[:])
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for round := 0; ; round++ {
		sw1, sw2 := x.resp[n-2], x.resp[n-1]
		if sw1 != conaxMoreData {
			if sw1 != 0x90 || sw2 != 0 {
				return statusError(name, sw1, sw2)
			}
			return nil
		}
		if round == conaxMaxRounds {
			return fmt.Errorf("%w: %s: more than %d read rounds", ErrCard, name, conaxMaxRounds)
		}
		if n, err = c.Transmit(x.readCmd(sw2), x.resp[:]); err != nil {
			return fmt.Errorf("%s read: %w", name, err)
		}
		walkNanos(x.resp[:n-2], f)
	}
}

func (x *Conax) readCmd(le byte) []byte {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = conaxCLA, conaxRead, 0, 0, le
	return x.cmd[:5]
}

// walkNanos calls f for every tag-length-value nano in b; a truncated last
// nano is ignored.
func walkNanos(b []byte, f func(tag byte, v []byte)) {
	for len(b) >= 2 && 2+int(b[1]) <= len(b) {
		f(b[0], b[2:2+b[1]])
		b = b[2+b[1]:]
	}
}

// ECM sends the section wrapped in nano 14 with DD A2, reads the answer
// with DD CA while the card says 98 xx and takes the CWs from nano 25.
func (x *Conax) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 4 || n > 252 {
		return refuse(BadECM, "ECM section length does not fit a Conax DD A2 command"), nil
	}
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = conaxCLA, conaxECM, 0, 0, byte(n+3)
	x.cmd[5], x.cmd[6], x.cmd[7] = nanoECM, byte(n+1), 0 // pairing mode 0: plain CWs
	copy(x.cmd[8:], ecm[:n])
	m, err := t.Transmit(x.cmd[:8+n], x.resp[:])
	if err != nil {
		return transportError(err)
	}
	var a Answer
	got, denied, wrapped := 0, false, false
	for round := 0; x.resp[m-2] == conaxMoreData; round++ {
		if round == conaxMaxRounds || x.resp[m-1] == 0 {
			return refuse(CardError, "Conax card kept answering 98 xx"), nil
		}
		if m, err = t.Transmit(x.readCmd(x.resp[m-1]), x.resp[:]); err != nil {
			return transportError(err)
		}
		b := x.resp[:m-2]
		for len(b) >= 2 && 2+int(b[1]) <= len(b) {
			tag, v := b[0], b[2:2+b[1]]
			b = b[2+b[1]:]
			switch {
			case tag == nanoCW && len(v) == conaxCWNanoLen && v[2] <= 1:
				copy(a.CW[8*int(v[2]):], v[5:13])
				got |= 1 << v[2]
			case tag == nanoCW || tag == nanoRSACW:
				wrapped = true
			case tag == nanoAccess && len(v) >= 2 && !(v[1] == 0 && (v[0] == 0 || v[0] == 0x40)):
				denied = true
			}
		}
	}
	sw1, sw2 := x.resp[m-2], x.resp[m-1]
	switch {
	case got != 0:
		a.Result = Found
		return a, nil
	case wrapped:
		return refuse(NotSupported, "paired Conax card: control words are RSA- or 3DES-wrapped and need host keys"), nil
	case denied:
		return refuse(NotSubscribed, "Conax card denied access (nano 31)"), nil
	case sw1 == 0x90 && sw2 == 0:
		return refuse(NotFound, "Conax card answered without control words"), nil
	}
	return commonStatus(sw1, sw2), nil
}

// ConaxDate decodes a Conax two-byte date: day in the low 5 bits of the
// first byte, month in the low nibble of the second, year 1990 + the high
// nibble of the second + 10 × the top 3 bits of the first.
func ConaxDate(b0, b1 byte) time.Time {
	y := 1990 + int(b1>>4) + 10*int(b0>>5)
	m, d := int(b1&0x0F), int(b0&0x1F)
	if m < 1 || m > 12 || d < 1 {
		return time.Time{}
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
}

// ConaxDateBytes encodes t as a Conax date (the inverse of ConaxDate for
// 1990-2069).
func ConaxDateBytes(t time.Time) (byte, byte) {
	off := t.Year() - 1990
	return byte(off/10)<<5 | byte(t.Day()), byte(off%10)<<4 | byte(t.Month())
}
