package pcsc

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultSocket is where Debian's pcscd listens.
const DefaultSocket = "/run/pcscd/pcscd.comm"

// Client is one connection to pcscd with an established context. Its
// methods are safe for concurrent use; they run one at a time.
type Client struct {
	conn    net.Conn
	timeout time.Duration // bound of one exchange with the daemon

	mu  sync.Mutex
	ctx uint32
	buf [headerLen + connectLen]byte
	// tx holds a transmit request and its APDU, rx the state table or an
	// answer, so that steady-state Transmit does not allocate.
	tx []byte
	rx []byte
}

// Dial connects to pcscd at path (DefaultSocket when empty), checks the
// protocol version and establishes a context. timeout bounds every exchange
// with the daemon except the card's own answer time, which Transmit bounds
// separately.
func Dial(path string, timeout time.Duration) (*Client, error) {
	if path == "" {
		path = DefaultSocket
	}
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("pcscd at %s: %w", path, err)
	}
	c := &Client{conn: conn, timeout: timeout, rx: make([]byte, maxReaders*readerStateLen)}
	if err := c.hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pcscd at %s: %w", path, err)
	}
	return c, nil
}

// hello exchanges the protocol version and establishes the context.
func (c *Client) hello() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.call(cmdVersion, c.timeout, versionMajor, versionMinor, 0)
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if rv := Code(ne.Uint32(b[8:])); rv != codeSuccess {
		return fmt.Errorf("version: daemon speaks protocol %d.%d, satd %d.%d: %w",
			ne.Uint32(b), ne.Uint32(b[4:]), versionMajor, versionMinor, rv)
	}
	const scopeSystem = 2
	if b, err = c.call(cmdEstablishContext, c.timeout, scopeSystem, 0, 0); err != nil {
		return fmt.Errorf("establish context: %w", err)
	}
	if rv := Code(ne.Uint32(b[8:])); rv != codeSuccess {
		return fmt.Errorf("establish context: %w", rv)
	}
	c.ctx = ne.Uint32(b[4:])
	return nil
}

// call sends a request made of 32-bit fields and reads an answer of the
// same size into c.buf. It holds no lock; callers hold c.mu.
func (c *Client) call(cmd uint32, timeout time.Duration, fields ...uint32) ([]byte, error) {
	n := 4 * len(fields)
	putHeader(c.buf[:], n, cmd)
	for i, f := range fields {
		ne.PutUint32(c.buf[headerLen+4*i:], f)
	}
	if err := c.send(c.buf[:headerLen+n], timeout); err != nil {
		return nil, err
	}
	return c.buf[:n], c.recv(c.buf[:n], timeout)
}

func (c *Client) send(b []byte, timeout time.Duration) error {
	c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

func (c *Client) recv(b []byte, timeout time.Duration) error {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	return nil
}

// ReaderStates returns pcscd's reader table: names, card presence, ATRs.
func (c *Client) ReaderStates() ([]ReaderState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	putHeader(c.buf[:], 0, cmdGetReadersState)
	if err := c.send(c.buf[:headerLen], c.timeout); err != nil {
		return nil, fmt.Errorf("reader states: %w", err)
	}
	if err := c.recv(c.rx, c.timeout); err != nil {
		return nil, fmt.Errorf("reader states: %w", err)
	}
	return decodeReaderStates(c.rx)
}

// Close releases the context and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.call(cmdReleaseContext, c.timeout, c.ctx, 0)
	return c.conn.Close()
}

// Card is a connection to the card in one reader.
type Card struct {
	c        *Client
	handle   uint32
	protocol uint32 // protoT0 or protoT1
	// cardTimeout bounds the card's answer to one APDU.
	cardTimeout time.Duration
}

// Connect connects exclusively to the card in reader, letting pcscd pick
// T=0 or T=1. cardTimeout bounds the card's answer to one APDU.
func (c *Client) Connect(reader string, cardTimeout time.Duration) (*Card, error) {
	if len(reader) >= maxReaderName {
		return nil, fmt.Errorf("connect %q: reader name longer than %d bytes", reader, maxReaderName-1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf[:headerLen+connectLen]
	clear(b)
	putHeader(b, connectLen, cmdConnect)
	p := b[headerLen:]
	ne.PutUint32(p, c.ctx)
	copy(p[4:], reader)
	o := 4 + maxReaderName
	ne.PutUint32(p[o:], shareExclusive)
	ne.PutUint32(p[o+4:], protoT0|protoT1)
	if err := c.send(b, c.timeout); err != nil {
		return nil, fmt.Errorf("connect %q: %w", reader, err)
	}
	// Powering a card up and reading its ATR may take the reader a while.
	if err := c.recv(p, c.timeout+cardTimeout); err != nil {
		return nil, fmt.Errorf("connect %q: %w", reader, err)
	}
	if rv := Code(ne.Uint32(p[o+16:])); rv != codeSuccess {
		return nil, fmt.Errorf("connect %q: %w", reader, rv)
	}
	card := &Card{c: c, handle: ne.Uint32(p[o+8:]), protocol: ne.Uint32(p[o+12:]), cardTimeout: cardTimeout}
	if card.protocol != protoT0 && card.protocol != protoT1 {
		return nil, fmt.Errorf("connect %q: %w: active protocol %d", reader, ErrProtocol, card.protocol)
	}
	return card, nil
}

// Protocol returns 0 or 1 for T=0 or T=1.
func (k *Card) Protocol() int {
	if k.protocol == protoT1 {
		return 1
	}
	return 0
}

// Reconnect resets the card (warm reset) and keeps the connection.
func (k *Card) Reconnect() error {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.call(cmdReconnect, c.timeout+k.cardTimeout, k.handle, shareExclusive, protoT0|protoT1, resetCard, 0, 0)
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	if rv := Code(ne.Uint32(b[20:])); rv != codeSuccess {
		return fmt.Errorf("reconnect: %w", rv)
	}
	k.protocol = ne.Uint32(b[16:])
	return nil
}

// Disconnect releases the card and powers it down.
func (k *Card) Disconnect() error {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.call(cmdDisconnect, c.timeout, k.handle, unpowerCard, 0)
	if err != nil {
		return fmt.Errorf("disconnect: %w", err)
	}
	if rv := Code(ne.Uint32(b[8:])); rv != codeSuccess && !rv.cardGone() {
		return fmt.Errorf("disconnect: %w", rv)
	}
	return nil
}

// TransmitRaw sends one command APDU as it is and writes the card's answer
// (data and SW1 SW2) into resp. A removed card fails with an error whose
// Code reports cardGone.
func (k *Card) TransmitRaw(cmd, resp []byte) (int, error) {
	if len(cmd) > maxAPDU || len(resp) < 2 {
		return 0, fmt.Errorf("transmit: command of %d bytes, answer buffer of %d", len(cmd), len(resp))
	}
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	need := headerLen + transmitLen + len(cmd)
	if cap(c.tx) < need {
		c.tx = make([]byte, need, max(need, headerLen+transmitLen+261))
	}
	b := c.tx[:need]
	putHeader(b, transmitLen, cmdTransmit)
	p := b[headerLen:]
	room := min(len(resp), maxAPDU)
	for i, f := range [8]uint32{k.handle, k.protocol, 8, uint32(len(cmd)), k.protocol, 8, uint32(room), 0} {
		ne.PutUint32(p[4*i:], f)
	}
	copy(p[transmitLen:], cmd)
	if err := c.send(b, c.timeout); err != nil {
		return 0, fmt.Errorf("transmit: %w", err)
	}
	hdr := c.buf[:transmitLen]
	if err := c.recv(hdr, c.timeout+k.cardTimeout); err != nil {
		return 0, fmt.Errorf("transmit: %w", err)
	}
	if rv := Code(ne.Uint32(hdr[28:])); rv != codeSuccess {
		return 0, fmt.Errorf("transmit: %w", rv)
	}
	n := int(ne.Uint32(hdr[24:]))
	if n < 2 || n > room {
		return 0, fmt.Errorf("transmit: %w: answer of %d bytes for a buffer of %d", ErrProtocol, n, room)
	}
	if err := c.recv(resp[:n], c.timeout); err != nil {
		return 0, fmt.Errorf("transmit: %w", err)
	}
	return n, nil
}
