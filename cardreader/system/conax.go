package system

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"satd.dev/satd/cardreader"
)

// Conax command bytes (class DD) and the nanos satd reads.
const (
	conaxCLA       = 0xDD
	conaxParams    = 0x26 // DD 26 10 01 40: parameters; DD 26 1C 01 01: PPV events
	conaxCAM       = 0x82 // CAM identity in, card addresses out
	conaxSubs      = 0xC6 // DD C6 1C 01 00: subscription records
	conaxECM       = 0xA2 // ECM wrapped in nano 14
	conaxPIN       = 0xC8 // parental PIN
	conaxRead      = 0xCA // read answer while the card says 98 xx
	conaxMoreData  = 0x98
	conaxMaxRounds = 16 // bound on 98 xx read rounds

	nanoVersion = 0x20
	nanoCAID    = 0x28
	nanoCAMID   = 0x11
	nanoAddrs   = 0x22 // wraps the address nanos of the DD 82 answer
	nanoAddress = 0x23
	nanoECM     = 0x14
	nanoCW      = 0x25
	nanoAccess  = 0x31
	nanoRSA     = 0x81
	subName     = 0x01
	subDates    = 0x30

	conaxCWNanoLen = 0x0D
)

var conaxHistorical = []byte("0B00")

// errConaxHang is the status word 90 11: the card hangs until a reset.
var errConaxHang = errors.New("the card hangs (90 11)")

// Conax status words and answers.
const (
	reasonConaxHang    = "Conax card hangs (90 11): card reset requested"
	reasonConaxRSA     = "RSA-paired card (nano 81): control words need the box's RSA key"
	reasonConax3DES    = "CWs are wrapped (3DES-paired card): checksums fail"
	reasonConaxHalf    = "Conax card sent only one control word"
	reasonConaxDenied  = "Conax card denied access (nano 31)"
	reasonConaxPIN     = "Conax card denied access (nano 31) after the parental PIN"
	reasonConaxNoCW    = "Conax card answered without control words"
	reasonConaxRounds  = "Conax card kept answering 98 xx"
	reasonConaxECMLen  = "ECM section length does not fit a Conax DD A2 command"
	conaxMaxECMSection = 252
)

// Conax is the Conax card system for unpaired cards (T=0, CAID 0Bxx).
type Conax struct {
	identityBox
	o    Options
	hang hangWatch
	cmd  [262]byte
	resp [260]byte
}

var _ System = (*Conax)(nil)

// NewConax returns a Conax system for one slot.
func NewConax(o Options) *Conax { return &Conax{o: o} }

// Name returns "conax".
func (*Conax) Name() string { return "conax" }

// Identify accepts cards whose historical bytes start with ASCII "0B00".
func (*Conax) Identify(_ context.Context, c cardreader.Card) (bool, error) {
	return bytes.HasPrefix(c.ATR().Historical, conaxHistorical), nil
}

// Init reads the parameters (CAID, version), presents the CAM identity to
// learn the card addresses and reads subscriptions and PPV events. A
// failing subscription read leaves the card usable for ECMs.
func (x *Conax) Init(_ context.Context, c cardreader.Card) error {
	id := Identity{System: "conax", CAID: 0x0B00, Providers: []uint32{0}}
	err := x.exchange(c, x.params(0x10, 0x01, 0x40), "DD 26", func(tag byte, v []byte) {
		if tag == nanoCAID && len(v) >= 2 {
			id.CAID = be16(v)
		}
		// Nano 20 is the card version and nano 2F a currency/language
		// field: neither says anything about pairing.
	})
	if err != nil {
		return err
	}
	if id.CAID>>8 != 0x0B {
		return fmt.Errorf("%w: DD 26 gave CAID %04X, want 0Bxx", ErrCard, id.CAID)
	}
	var shared []string
	err = x.exchange(c, x.camID(id.CAID), "DD 82", func(tag byte, v []byte) {
		walkAddresses(tag, v, func(addr []byte) {
			s := strconv.FormatUint(uint64(be32(addr)), 10)
			if addr[0] != 0 {
				id.Serial = s
			} else {
				shared = append(shared, s)
			}
		})
	})
	if err != nil {
		return err
	}
	if id.Serial == "" {
		return fmt.Errorf("%w: DD 82 answer has no unique address (shared: %v)", ErrCard, shared)
	}
	// Subscriptions and PPV events are informative: a card that refuses
	// them still decodes, unless it hangs.
	if id.Subscriptions, err = x.records(c, x.cmdOf(conaxCLA, conaxSubs, 0x1C, 0x01, 0x00), "DD C6", nil); err != nil {
		return err
	}
	if id.Subscriptions, err = x.records(c, x.params(0x1C, 0x01, 0x01), "DD 26 PPV", id.Subscriptions); err != nil {
		return err
	}
	x.hang.explained()
	x.set(id)
	return nil
}

// params builds DD 26 00 00 03 a b c.
func (x *Conax) params(a, b, c byte) []byte { return x.cmdOf(conaxCLA, conaxParams, a, b, c) }

// cmdOf builds cla ins 00 00 03 a b c.
func (x *Conax) cmdOf(cla, ins, a, b, c byte) []byte {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = cla, ins, 0, 0, 3
	x.cmd[5], x.cmd[6], x.cmd[7] = a, b, c
	return x.cmd[:8]
}

// camID builds DD 82 with nano 11: the 15-byte CAM identity record.
func (x *Conax) camID(caid uint16) []byte {
	rec := [...]byte{conaxCLA, conaxCAM, 0, 0, 0x11, nanoCAMID, 0x0F,
		0x01, 0xB0, 0x0F, 0xFF, 0xFF, 0xFB, 0x00, 0x00, 0x09, 0x04, byte(caid >> 8), byte(caid), 0xE0, 0x30, 0x2B}
	return x.cmd[:copy(x.cmd[:], rec[:])]
}

// walkAddresses finds the address nanos (23, 7 bytes, address in value
// bytes 3..6) inside the nano 22 wrapper, or at top level.
func walkAddresses(tag byte, v []byte, f func(addr []byte)) {
	switch {
	case tag == nanoAddrs:
		walkNanos(v, func(t byte, w []byte) { walkAddresses(t, w, f) })
	case tag == nanoAddress && len(v) >= 7:
		f(v[3:7])
	}
}

// records reads subscription or PPV records with cmd and appends them to
// subs. A refusal ends the read quietly; a hanging card or a transport
// failure is an error.
func (x *Conax) records(c Transmitter, cmd []byte, name string, subs []Subscription) ([]Subscription, error) {
	err := x.exchange(c, cmd, name, func(_ byte, v []byte) {
		subs = append(subs, conaxRecord(v)...)
	})
	if err != nil && (errors.Is(err, errConaxHang) || !errors.Is(err, ErrCard)) {
		return subs, err
	}
	return subs, nil
}

// conaxRecord decodes one record: an id (2 bytes), then sub-nanos 01
// (name), 30 (dates: start and end, two bytes each, in one nano or in two
// consecutive ones) and 20 (classes, not used). Each date pair is one
// subscription period.
func conaxRecord(v []byte) []Subscription {
	if len(v) < 2 {
		return nil
	}
	var out []Subscription
	id, name := be16(v), ""
	var dates []time.Time
	walkNanos(v[2:], func(tag byte, w []byte) {
		switch {
		case tag == subName:
			name = strings.TrimRight(string(w), " \x00")
		case tag == subDates:
			for ; len(w) >= 2; w = w[2:] {
				dates = append(dates, ConaxDate(w[0], w[1]))
			}
		}
	})
	for i := 0; i+1 < len(dates); i += 2 {
		out = append(out, Subscription{ID: id, Name: name, Start: dates[i], End: dates[i+1]})
	}
	if len(dates) < 2 {
		out = append(out, Subscription{ID: id, Name: name})
	}
	return out
}

// exchange sends cmd and reads the answer with DD CA while the card says
// 98 xx, handing each nano to f.
func (x *Conax) exchange(c Transmitter, cmd []byte, name string, f func(tag byte, v []byte)) error {
	n, err := c.Transmit(cmd, x.resp[:])
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for round := 0; ; round++ {
		sw1, sw2 := x.resp[n-2], x.resp[n-1]
		switch {
		case sw1 == 0x90 && sw2 == 0x11:
			return fmt.Errorf("%w: %s: %w", ErrCard, name, errConaxHang)
		case sw1 != conaxMoreData || sw2 == 0:
			if sw1 != 0x90 && sw1 != conaxMoreData {
				return statusError(name, sw1, sw2)
			}
			return nil
		case round == conaxMaxRounds:
			return fmt.Errorf("%w: %s: more than %d read rounds", ErrCard, name, conaxMaxRounds)
		}
		if n, err = c.Transmit(x.readCmd(sw2), x.resp[:]); err != nil {
			return fmt.Errorf("%s read: %w", name, err)
		}
		if sw1 := x.resp[n-2]; sw1 == 0x90 || sw1 == conaxMoreData {
			walkNanos(x.resp[:n-2], f)
		}
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

// conaxECMState collects what the answer nanos of one ECM said.
type conaxECMState struct {
	got    uint8 // bit 0 even CW, bit 1 odd CW
	denied bool
	rsa    bool
	hang   bool
	rounds bool // the card kept answering 98 xx
}

// ECM sends the section wrapped in nano 14 with DD A2, reads the answer
// with DD CA while the card says 98 xx and takes the CWs from nano 25. A
// parental refusal is retried once after the configured PIN.
func (x *Conax) ECM(t Transmitter, ecm []byte) (Answer, error) {
	n, ok := sectionLen(ecm)
	if !ok || n < 4 || n > conaxMaxECMSection {
		return refuse(BadECM, reasonConaxECMLen), nil
	}
	var a Answer
	var st conaxECMState
	sw1, sw2, err := x.sendECM(t, ecm[:n], &a, &st)
	if err != nil {
		return transportError(err)
	}
	pinSent := st.denied && st.got != 3 && !st.hang && len(x.o.PIN) == 4
	if pinSent {
		p1, p2, err := x.sendPIN(t)
		switch {
		case err != nil:
			return transportError(err)
		case p1 == 0x90 && p2 == 0x11:
			st.hang = true
		default:
			a, st = Answer{}, conaxECMState{}
			if sw1, sw2, err = x.sendECM(t, ecm[:n], &a, &st); err != nil {
				return transportError(err)
			}
		}
	}
	return x.conclude(t, &a, &st, pinSent, sw1, sw2), nil
}

// sendECM sends DD A2 and runs the DD CA loop, filling a.CW and st.
func (x *Conax) sendECM(t Transmitter, sec []byte, a *Answer, st *conaxECMState) (byte, byte, error) {
	n := len(sec)
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = conaxCLA, conaxECM, 0, 0, byte(n+3)
	x.cmd[5], x.cmd[6], x.cmd[7] = nanoECM, byte(n+1), 0 // pairing mode 0: plain CWs
	copy(x.cmd[8:], sec)
	m, err := t.Transmit(x.cmd[:8+n], x.resp[:])
	if err != nil {
		return 0, 0, err
	}
	for round := 0; x.resp[m-2] == conaxMoreData && x.resp[m-1] != 0; round++ {
		if round == conaxMaxRounds {
			st.rounds = true
			break
		}
		if m, err = t.Transmit(x.readCmd(x.resp[m-1]), x.resp[:]); err != nil {
			return 0, 0, err
		}
		x.ecmNanos(x.resp[:m-2], a, st)
	}
	sw1, sw2 := x.resp[m-2], x.resp[m-1]
	st.hang = st.hang || (sw1 == 0x90 && sw2 == 0x11)
	return sw1, sw2, nil
}

// ecmNanos reads the nanos of one DD CA answer (in any order).
func (x *Conax) ecmNanos(b []byte, a *Answer, st *conaxECMState) {
	for len(b) >= 2 && 2+int(b[1]) <= len(b) {
		tag, v := b[0], b[2:2+b[1]]
		b = b[2+b[1]:]
		switch {
		case tag == nanoCW && len(v) >= conaxCWNanoLen && v[2] <= 1:
			copy(a.CW[8*int(v[2]):8*int(v[2])+8], v[5:13])
			st.got |= 1 << v[2]
		case tag == nanoRSA:
			st.rsa = true
		case tag == nanoAccess && !(len(v) == 2 && (v[0] == 0 || v[0] == 0x40) && v[1] == 0):
			st.denied = true
		}
	}
}

// sendPIN sends DD C8 00 00 07 1D 05 01 <PIN>.
func (x *Conax) sendPIN(t Transmitter) (byte, byte, error) {
	x.cmd[0], x.cmd[1], x.cmd[2], x.cmd[3], x.cmd[4] = conaxCLA, conaxPIN, 0, 0, 7
	x.cmd[5], x.cmd[6], x.cmd[7] = 0x1D, 0x05, 0x01
	copy(x.cmd[8:12], x.o.PIN)
	m, err := t.Transmit(x.cmd[:12], x.resp[:])
	if err != nil {
		return 0, 0, err
	}
	return x.resp[m-2], x.resp[m-1], nil
}

// conclude turns what the card said into an answer.
func (x *Conax) conclude(t Transmitter, a *Answer, st *conaxECMState, pinSent bool, sw1, sw2 byte) Answer {
	switch {
	case st.hang:
		x.hang.explained()
		requestReset(t, "Conax card hangs (90 11)")
		return refuse(CardError, reasonConaxHang)
	case st.rsa:
		return refuse(NotSupported, reasonConaxRSA)
	case st.got == 3:
		x.hang.explained()
		if conaxWrapped(&a.CW) {
			return refuse(NotSupported, reasonConax3DES)
		}
		return found(x.o.Policy, &a.CW)
	case st.got != 0:
		return refuse(NotFound, reasonConaxHalf)
	case st.denied && pinSent:
		return refuse(NotSubscribed, reasonConaxPIN)
	case st.denied:
		return refuse(NotSubscribed, reasonConaxDenied)
	case st.rounds:
		x.hang.unexplained(t)
		return refuse(CardError, reasonConaxRounds)
	case sw1 == 0x90 || sw1 == conaxMoreData:
		x.hang.explained()
		return refuse(NotFound, reasonConaxNoCW)
	}
	return x.hang.status(t, sw1, sw2)
}

// conaxWrapped reports whether a CW pair looks 3DES-wrapped: both checksum
// bytes of the even or of the odd CW are wrong. A plain CW with one
// damaged checksum byte is left to the checksum policy.
func conaxWrapped(cw *[16]byte) bool {
	bad := cardreader.BadCWChecksums(cw)
	return bad&0b0011 == 0b0011 || bad&0b1100 == 0b1100
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
