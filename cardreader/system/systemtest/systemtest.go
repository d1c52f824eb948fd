// Package systemtest plays back card-system APDU transcripts in the
// periph.io playback style. A transcript is written by hand from the
// reference behaviour of real cards (docs/cardsystems.md), never recorded
// from satd: it holds the ATR, the init exchanges with what the system
// must read from them, and ECM cases, each with its exchanges and the
// expected outcome. Playback is a cardreader.Card that fails on the first
// command that differs from the transcript.
//
// The text form, one item per line, "#" starts a comment:
//
//	atr 3B ...              the card's ATR
//	option dropbadcws       system options (also "option pin 1234")
//	cardcw 01 02 ...        the CW pair the simulated card holds (for personality replay)
//	> DD 26 00 00 ...       a command APDU
//	< 98 0B                 the card's answer (data, SW1 SW2)
//	serial 12345678         identity the system must read at init (also caid, providers)
//	--- ecm NAME            starts an ECM case
//	mode token              how the simulated card answers (personality replay)
//	ecm 80 70 ...           the ECM section
//	result found            expected result (found, not-found, not-subscribed, bad-ecm, card-error, not-supported)
//	cw 01 02 ...            expected CW pair
//	reason TEXT             text the refusal reason must contain
//	reset                   the system must ask for a card reset
package systemtest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"satd.dev/satd/cardreader"
	"satd.dev/satd/cardreader/iso7816"
)

// Exchange is one command APDU and the card's response (data, SW1 SW2).
type Exchange struct {
	Cmd, Resp []byte
}

// Case is one ECM with its exchanges and expected outcome.
type Case struct {
	Name      string
	Mode      string
	ECM       []byte
	Exchanges []Exchange
	Result    string
	CW        *[16]byte
	Reason    string
	Reset     bool
	Line      int
}

// Transcript is a byte-exact record of a card system's init and ECMs.
type Transcript struct {
	ATR      []byte
	Options  []string
	CardCW   *[16]byte
	Init     []Exchange
	Identity map[string]string
	Cases    []Case
}

// Parse reads a transcript.
func Parse(r io.Reader) (*Transcript, error) {
	t := &Transcript{Identity: map[string]string{}}
	sc := bufio.NewScanner(r)
	var cur *Case
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		rest = strings.TrimSpace(rest)
		if err := t.item(&cur, key, rest, line); err != nil {
			return nil, fmt.Errorf("transcript line %d: %w", line, err)
		}
	}
	return t, sc.Err()
}

// item takes one line.
func (t *Transcript) item(cur **Case, key, rest string, line int) error {
	list := &t.Init
	if *cur != nil {
		list = &(*cur).Exchanges
	}
	switch key {
	case "---":
		name, ok := strings.CutPrefix(rest, "ecm ")
		if !ok {
			return fmt.Errorf("want \"--- ecm NAME\"")
		}
		t.Cases = append(t.Cases, Case{Name: name, Line: line})
		*cur = &t.Cases[len(t.Cases)-1]
		return nil
	case "option":
		t.Options = append(t.Options, rest)
		return nil
	case "serial", "caid", "providers":
		t.Identity[key] = rest
		return nil
	case "mode", "result", "reason", "reset":
		if *cur == nil {
			return fmt.Errorf("%s outside an ECM case", key)
		}
		c := *cur
		switch key {
		case "mode":
			c.Mode = rest
		case "result":
			c.Result = rest
		case "reason":
			c.Reason = rest
		case "reset":
			c.Reset = true
		}
		return nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
	if err != nil {
		return err
	}
	switch key {
	case "atr":
		t.ATR = b
	case "ecm":
		if *cur == nil {
			return fmt.Errorf("ecm outside an ECM case")
		}
		(*cur).ECM = b
	case "cw", "cardcw":
		if len(b) != 16 {
			return fmt.Errorf("%s has %d bytes, want 16", key, len(b))
		}
		cw := [16]byte(b)
		if key == "cardcw" {
			t.CardCW = &cw
		} else if *cur != nil {
			(*cur).CW = &cw
		}
	case ">":
		*list = append(*list, Exchange{Cmd: b})
	case "<":
		if len(*list) == 0 || (*list)[len(*list)-1].Resp != nil {
			return fmt.Errorf("response without command")
		}
		(*list)[len(*list)-1].Resp = b
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

func hexs(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// Playback is a cardreader.Card that answers from a list of exchanges and
// records the first mismatch and every reset request.
type Playback struct {
	atr *iso7816.ATR
	Ex  []Exchange
	// Err is the first mismatch; later commands fail too.
	Err error
	// Resets are the reasons of the reset requests.
	Resets []string
}

var (
	_ cardreader.Card           = (*Playback)(nil)
	_ cardreader.ResetRequester = (*Playback)(nil)
)

// NewPlayback returns a Playback for atr and exchanges.
func NewPlayback(atr []byte, ex []Exchange) (*Playback, error) {
	a, err := iso7816.ParseATR(atr, iso7816.Lenient)
	if err != nil {
		return nil, err
	}
	return &Playback{atr: a, Ex: ex}, nil
}

// ATR returns the parsed ATR.
func (p *Playback) ATR() *iso7816.ATR { return p.atr }

// RequestReset records a reset request.
func (p *Playback) RequestReset(reason string) { p.Resets = append(p.Resets, reason) }

// Transmit checks cmd against the next exchange and returns its response.
func (p *Playback) Transmit(cmd, resp []byte) (int, error) {
	if p.Err != nil {
		return 0, p.Err
	}
	if len(p.Ex) == 0 {
		p.Err = fmt.Errorf("unexpected command %s after the end of the transcript", hexs(cmd))
		return 0, p.Err
	}
	e := p.Ex[0]
	p.Ex = p.Ex[1:]
	if !bytes.Equal(cmd, e.Cmd) {
		p.Err = fmt.Errorf("command %s, transcript has %s", hexs(cmd), hexs(e.Cmd))
		return 0, p.Err
	}
	return copy(resp, e.Resp), nil
}
