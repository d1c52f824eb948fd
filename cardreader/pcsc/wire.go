// Package pcsc is a PC/SC reader for satd: a pure-Go client of the pcscd
// daemon's socket protocol (no cgo, so static builds keep it) and a
// cardreader.APDUSlot on top, which lets the card systems talk APDUs to any
// reader pcscd drives (USB CCID readers, vpcd in tests).
//
// The wire format is pcsc-lite's message protocol 4.4 (pcsc-lite 1.8.24 to
// 1.9.x): every request is a header {size, command} followed by a fixed
// struct of 32-bit fields in host byte order; the daemon answers with the
// same struct, followed by data for Transmit and by the reader state table
// for CMD_GET_READERS_STATE. Layouts are in wire.go.
//
// github.com/gballet/go-libpcsclite was evaluated against Debian's pcscd
// 1.9.9 and not used: it decodes reader states with unsafe.Offsetof of a Go
// struct holding a string (wrong offsets: no usable state or ATR), always
// sends T=1 as the transmit protocol (T=0 cards fail), hard-codes little
// endian, has no card event support and allocates per APDU.
package pcsc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Commands of pcsc-lite's message protocol (winscard_msg.h).
const (
	cmdEstablishContext = 0x01
	cmdReleaseContext   = 0x02
	cmdConnect          = 0x04
	cmdReconnect        = 0x05
	cmdDisconnect       = 0x06
	cmdTransmit         = 0x09
	cmdVersion          = 0x11
	cmdGetReadersState  = 0x12
)

// Protocol version this client speaks.
const (
	versionMajor = 4
	versionMinor = 4
)

// Sizes of the fixed structs and the reader state table.
const (
	headerLen      = 8
	maxReaderName  = 128
	maxATR         = 33
	maxReaders     = 16 // PCSCLITE_MAX_READERS_CONTEXTS
	readerStateLen = maxReaderName + 3*4 + maxATR + 3 + 2*4
	connectLen     = 4 + maxReaderName + 5*4
	reconnectLen   = 6 * 4
	transmitLen    = 8 * 4
	// maxAPDU bounds commands and answers (pcsc-lite's
	// MAX_BUFFER_SIZE_EXTENDED).
	maxAPDU = 4 + 3 + 1<<16 + 3 + 2
)

// Share modes, protocols and dispositions (pcsclite.h).
const (
	shareExclusive = 1
	protoT0        = 1
	protoT1        = 2
	leaveCard      = 0
	resetCard      = 1
	unpowerCard    = 2
)

// Reader state bits (pcsclite.h SCARD_ABSENT … SCARD_SPECIFIC).
const (
	stateAbsent  = 0x0002
	statePresent = 0x0004
)

// ne is the host byte order pcscd uses on its socket.
var ne = binary.NativeEndian

// Code is a PC/SC return value (SCARD_E_…, SCARD_W_…).
type Code uint32

// Return values satd branches on or names in errors.
const (
	codeSuccess        Code = 0
	codeNoSmartcard    Code = 0x8010000C
	codeRemovedCard    Code = 0x80100069
	codeResetCard      Code = 0x80100068
	codeUnpoweredCard  Code = 0x80100067
	codeUnresponsive   Code = 0x80100066
	codeReaderUnavail  Code = 0x80100017
	codeUnknownReader  Code = 0x80100009
	codeSharing        Code = 0x8010000B
	codeTimeout        Code = 0x8010000A
	codeProtoMismatch  Code = 0x8010000F
	codeInsufficient   Code = 0x80100008
	codeServiceStopped Code = 0x8010001E
	codeNoService      Code = 0x8010001D
	codeCommError      Code = 0x80100013
	codeInvalidHandle  Code = 0x80100003
	codeInvalidValue   Code = 0x80100011
	codeNotTransacted  Code = 0x80100016
)

var codeNames = map[Code]string{
	codeNoSmartcard: "SCARD_E_NO_SMARTCARD", codeRemovedCard: "SCARD_W_REMOVED_CARD",
	codeResetCard: "SCARD_W_RESET_CARD", codeUnpoweredCard: "SCARD_W_UNPOWERED_CARD",
	codeUnresponsive: "SCARD_W_UNRESPONSIVE_CARD", codeReaderUnavail: "SCARD_E_READER_UNAVAILABLE",
	codeUnknownReader: "SCARD_E_UNKNOWN_READER", codeSharing: "SCARD_E_SHARING_VIOLATION",
	codeTimeout: "SCARD_E_TIMEOUT", codeProtoMismatch: "SCARD_E_PROTO_MISMATCH",
	codeInsufficient: "SCARD_E_INSUFFICIENT_BUFFER", codeServiceStopped: "SCARD_E_SERVICE_STOPPED",
	codeNoService: "SCARD_E_NO_SERVICE", codeCommError: "SCARD_F_COMM_ERROR",
	codeInvalidHandle: "SCARD_E_INVALID_HANDLE", codeInvalidValue: "SCARD_E_INVALID_VALUE",
	codeNotTransacted: "SCARD_E_NOT_TRANSACTED",
}

func (c Code) Error() string {
	if n, ok := codeNames[c]; ok {
		return fmt.Sprintf("%s (0x%08X)", n, uint32(c))
	}
	return fmt.Sprintf("PC/SC error 0x%08X", uint32(c))
}

// cardGone reports return values that mean the card left the reader or
// lost power.
func (c Code) cardGone() bool {
	return c == codeNoSmartcard || c == codeRemovedCard || c == codeUnpoweredCard || c == codeReaderUnavail
}

// ErrProtocol reports a daemon answer this client cannot read.
var ErrProtocol = errors.New("pcsc: unexpected answer from pcscd")

// ReaderState is one row of pcscd's reader state table.
type ReaderState struct {
	Name     string
	Events   uint32 // card event counter
	State    uint32 // SCARD_* bits
	ATR      []byte
	Protocol uint32
}

// Present reports whether a card is in the reader.
func (s ReaderState) Present() bool { return s.State&statePresent != 0 }

// decodeReaderStates reads the table pcscd sends for CMD_GET_READERS_STATE:
// maxReaders rows of {name[128], eventCounter, readerState, readerSharing,
// cardAtr[33], (3 bytes padding), cardAtrLength, cardProtocol}. Rows with an
// empty name are free slots.
func decodeReaderStates(b []byte) ([]ReaderState, error) {
	if len(b) != maxReaders*readerStateLen {
		return nil, fmt.Errorf("%w: reader state table of %d bytes, want %d", ErrProtocol, len(b), maxReaders*readerStateLen)
	}
	var out []ReaderState
	for i := range maxReaders {
		row := b[i*readerStateLen : (i+1)*readerStateLen]
		name := cString(row[:maxReaderName])
		if name == "" {
			continue
		}
		o := maxReaderName
		st := ReaderState{Name: name, Events: ne.Uint32(row[o:]), State: ne.Uint32(row[o+4:])}
		atr := row[o+12 : o+12+maxATR]
		o += 12 + maxATR + 3
		n := ne.Uint32(row[o:])
		st.Protocol = ne.Uint32(row[o+4:])
		if n > maxATR {
			return nil, fmt.Errorf("%w: reader %q: ATR length %d", ErrProtocol, name, n)
		}
		st.ATR = append([]byte(nil), atr[:n]...)
		out = append(out, st)
	}
	return out, nil
}

// cString returns the text of a NUL-terminated field.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// putHeader writes a message header.
func putHeader(b []byte, size int, cmd uint32) {
	ne.PutUint32(b, uint32(size))
	ne.PutUint32(b[4:], cmd)
}
