package pcsc

import (
	"errors"
	"fmt"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/iso7816"
	"satd.dev/satd/hal"
)

// transport is a connected card as a cardreader.Transport.
type transport struct {
	card *Card
	atr  *iso7816.ATR
	get  [5]byte // GET RESPONSE / re-issued header
}

var _ cardreader.Transport = (*transport)(nil)

// ATR returns the card's answer to reset as pcscd read it.
func (t *transport) ATR() *iso7816.ATR { return t.atr }

// Link reports the protocol pcscd negotiated; speed and convention are the
// reader's business and not reported.
func (t *transport) Link() cardreader.LinkInfo {
	return cardreader.LinkInfo{Protocol: t.card.Protocol(), FIDI: iso7816.DefaultFIDI}
}

// maxGetResponses bounds a chain of 61xx answers.
const maxGetResponses = 64

// Transmit sends one APDU. For T=0 cards it does what satd's T=0 engine
// does, so card systems see the same answers over either transport: 61xx is
// followed by GET RESPONSE, and a case-2 command answered 6Cxx is re-issued
// with Le = xx. pcscd leaves both to the application.
func (t *transport) Transmit(cmd, resp []byte) (int, error) {
	n, err := t.raw(cmd, resp)
	if err != nil || t.card.protocol != protoT0 || len(cmd) < 4 {
		return n, err
	}
	if sw1, sw2 := resp[n-2], resp[n-1]; sw1 == 0x6C && len(cmd) == 5 {
		t.get = [5]byte{cmd[0], cmd[1], cmd[2], cmd[3], sw2}
		if n, err = t.raw(t.get[:], resp); err != nil {
			return 0, err
		}
	}
	for i := 0; resp[n-2] == 0x61; i++ {
		if i == maxGetResponses {
			return 0, fmt.Errorf("%w: more than %d GET RESPONSE rounds", cardreader.ErrProtocol, maxGetResponses)
		}
		t.get = [5]byte{cmd[0], 0xC0, 0, 0, resp[n-1]}
		m, err := t.raw(t.get[:], resp[n-2:])
		if err != nil {
			return 0, err
		}
		n += m - 2
	}
	return n, nil
}

// raw sends one APDU and marks a removed card with hal.ErrNoCard.
func (t *transport) raw(cmd, resp []byte) (int, error) {
	n, err := t.card.TransmitRaw(cmd, resp)
	if err != nil {
		var rv Code
		if errors.As(err, &rv) && rv.cardGone() {
			return 0, fmt.Errorf("%w: %w", hal.ErrNoCard, err)
		}
		return 0, err
	}
	return n, nil
}
