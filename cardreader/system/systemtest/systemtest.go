// Package systemtest records and plays back card-system APDU transcripts in
// the periph.io record/playback style. A Transcript holds the ATR, the init
// exchanges, one ECM with its exchanges and the expected control words;
// Playback is a cardreader.Card that fails on the first command that
// differs from the transcript.
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

// Transcript is a byte-exact record of a card system's init and one ECM.
type Transcript struct {
	ATR  []byte
	Init []Exchange
	ECM  []byte
	// ECMExchanges are the exchanges of processing ECM.
	ECMExchanges []Exchange
	CW           [16]byte
}

// Format writes t in the text form Parse reads: lines "atr", "ecm", "cw"
// with hex bytes, "> cmd" and "< resp" for exchanges, "--- ecm" between
// init and ECM exchanges, "#" comments.
func (t *Transcript) Format(w io.Writer, comment string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\natr %s\n", comment, hexs(t.ATR))
	for _, e := range t.Init {
		fmt.Fprintf(&b, "> %s\n< %s\n", hexs(e.Cmd), hexs(e.Resp))
	}
	fmt.Fprintf(&b, "--- ecm\necm %s\n", hexs(t.ECM))
	for _, e := range t.ECMExchanges {
		fmt.Fprintf(&b, "> %s\n< %s\n", hexs(e.Cmd), hexs(e.Resp))
	}
	fmt.Fprintf(&b, "cw %s\n", hexs(t.CW[:]))
	_, err := w.Write(b.Bytes())
	return err
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

// Parse reads a transcript written by Format.
func Parse(r io.Reader) (*Transcript, error) {
	t := &Transcript{}
	sc := bufio.NewScanner(r)
	inECM, line := false, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if text == "--- ecm" {
			inECM = true
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
		if err != nil {
			return nil, fmt.Errorf("transcript line %d: %w", line, err)
		}
		list := &t.Init
		if inECM {
			list = &t.ECMExchanges
		}
		switch key {
		case "atr":
			t.ATR = b
		case "ecm":
			t.ECM = b
		case "cw":
			if len(b) != 16 {
				return nil, fmt.Errorf("transcript line %d: cw has %d bytes, want 16", line, len(b))
			}
			copy(t.CW[:], b)
		case ">":
			*list = append(*list, Exchange{Cmd: b})
		case "<":
			if len(*list) == 0 || (*list)[len(*list)-1].Resp != nil {
				return nil, fmt.Errorf("transcript line %d: response without command", line)
			}
			(*list)[len(*list)-1].Resp = b
		default:
			return nil, fmt.Errorf("transcript line %d: unknown key %q", line, key)
		}
	}
	return t, sc.Err()
}

// Playback is a cardreader.Card that answers from a list of exchanges and
// records the first mismatch.
type Playback struct {
	atr *iso7816.ATR
	Ex  []Exchange
	// Err is the first mismatch; later commands fail too.
	Err error
}

var _ cardreader.Card = (*Playback)(nil)

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

// Recorder is a cardreader.Card that forwards to Card and keeps every
// exchange.
type Recorder struct {
	Card interface {
		Transmit(cmd, resp []byte) (int, error)
	}
	Atr *iso7816.ATR
	Ex  []Exchange
}

// ATR returns Atr.
func (r *Recorder) ATR() *iso7816.ATR { return r.Atr }

// Transmit forwards and records.
func (r *Recorder) Transmit(cmd, resp []byte) (int, error) {
	n, err := r.Card.Transmit(cmd, resp)
	if err == nil {
		r.Ex = append(r.Ex, Exchange{Cmd: bytes.Clone(cmd), Resp: bytes.Clone(resp[:n])})
	}
	return n, err
}
