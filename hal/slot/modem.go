package slot

import (
	"errors"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// modemPort is the part of uart.Port a Phoenix reader's lines need.
type modemPort interface {
	SetRTS(on bool) error
	SetDTR(on bool) error
	ModemStatus() (int, error)
}

// modemPin presents one modem line of a serial port as a gpio.PinIO, so the
// Phoenix wiring runs through the same sequencer and card-detect code as
// GPIO slots. Status lines (CD, DSR, CTS, RI) are inputs without edges and
// are polled with TIOCMGET; RTS and DTR are outputs. Level High means the
// line is asserted.
type modemPin struct {
	port  modemPort
	bit   int
	name  string
	mu    sync.Mutex
	level gpio.Level
}

var _ gpio.PinIO = (*modemPin)(nil)

var errModemEdge = errors.New("modem status lines have no edge interrupt; they are polled")

func (m *modemPin) String() string   { return m.name }
func (m *modemPin) Name() string     { return m.name }
func (m *modemPin) Number() int      { return m.bit }
func (m *modemPin) Function() string { return "modem" }
func (m *modemPin) Halt() error      { return nil }

func (m *modemPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return errModemEdge
	}
	return nil
}

func (m *modemPin) Read() gpio.Level {
	if m.bit == ModemRTS || m.bit == ModemDTR {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.level
	}
	s, err := m.port.ModemStatus()
	return err == nil && s&m.bit != 0
}

func (m *modemPin) WaitForEdge(time.Duration) bool { return false }
func (m *modemPin) Pull() gpio.Pull                { return gpio.PullNoChange }
func (m *modemPin) DefaultPull() gpio.Pull         { return gpio.PullNoChange }

func (m *modemPin) Out(l gpio.Level) error {
	var err error
	switch m.bit {
	case ModemRTS:
		err = m.port.SetRTS(bool(l))
	case ModemDTR:
		err = m.port.SetDTR(bool(l))
	default:
		err = errors.New("modem status line " + m.name + " is an input")
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.level = l
	m.mu.Unlock()
	return nil
}

func (m *modemPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("modem line " + m.name + " has no PWM")
}

var modemNames = map[int]string{ModemRTS: "RTS", ModemDTR: "DTR", ModemCD: "CD", ModemDSR: "DSR", ModemCTS: "CTS", ModemRI: "RI"}
