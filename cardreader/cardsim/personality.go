package cardsim

// Personality is the APDU layer of a simulated card: the card-system
// behaviour (cardreader/system personalities plug in here). The simulator
// handles everything below it: ATR, PPS, T=0 procedure bytes, GET RESPONSE,
// T=1 blocks and chaining.
type Personality interface {
	// DataIn reports, for T=0, whether the command with header CLA INS P1
	// P2 P3 carries P3 data bytes to the card (cases 3 and 4) rather than
	// asking for P3 response bytes (cases 1 and 2).
	DataIn(header []byte) bool
	// Respond handles one command APDU and writes the response data
	// followed by SW1 SW2 into resp (which holds at least 258 bytes),
	// returning the length. Under T=0 a case 2 command arrives as its
	// 5-byte header and a case 3/4 command as header and data; under T=1
	// the APDU arrives as the host sent it.
	Respond(cmd, resp []byte) int
}

// Resetter is implemented by personalities that keep state a card loses
// on reset (a hung card, a pending answer): the simulator calls Reset at
// every reset, before the ATR.
type Resetter interface {
	Reset()
}

// Echo is a Personality for tests and demo mode. Commands with INS B0, B2
// or CA (READ BINARY, READ RECORD, GET DATA) ask for data: the card returns
// Le bytes counting up from P2 (Le 0 means 256). Every other command sends
// data, which the card returns unchanged (case 4; none for case 1/3 with
// INS D6 UPDATE BINARY). All end with 90 00.
type Echo struct {
	// FixedLen, when set, makes data-out commands return exactly FixedLen
	// bytes whatever Le asks, so a T=0 card answers a wrong Le with 6Cxx.
	FixedLen int
}

var _ Personality = Echo{}

// DataIn reports whether INS is a data-in command.
func (Echo) DataIn(h []byte) bool {
	switch h[1] {
	case 0xB0, 0xB2, 0xCA:
		return false
	}
	return true
}

// Respond echoes data or produces Le counting bytes.
func (e Echo) Respond(cmd, resp []byte) int {
	n := 0
	switch {
	case len(cmd) < 5:
	case !e.DataIn(cmd):
		le := int(cmd[4])
		if le == 0 {
			le = 256
		}
		if len(cmd) > 5 { // T=1 case 4 shape: Le is last
			le = int(cmd[len(cmd)-1])
			if le == 0 {
				le = 256
			}
		}
		if e.FixedLen > 0 {
			le = e.FixedLen
		}
		for i := range le {
			resp[i] = cmd[3] + byte(i)
		}
		n = le
	case cmd[1] == 0xD6:
	default:
		lc := int(cmd[4])
		if 5+lc <= len(cmd) {
			n = copy(resp, cmd[5:5+lc])
		}
	}
	resp[n], resp[n+1] = 0x90, 0x00
	return n + 2
}
