package dvbapi

import (
	"log/slog"
	"math/bits"
)

// Devices opens the receiver's own DVB devices for local-device mode:
// /dev/dvb/adapterA/demuxD for section filters and /dev/dvb/adapterA/caN for
// the descrambler.
type Devices interface {
	OpenDemux(adapter, demux uint8) (DemuxHandle, error)
	OpenCA(adapter, ca uint8) (CAHandle, error)
}

// DemuxHandle is one open demux device carrying one section filter.
type DemuxHandle interface {
	// SetFilter (re)programs the filter (DMX_SET_FILTER).
	SetFilter(f *Filter) error
	// ReadSection blocks for the next section and returns its length.
	ReadSection(b []byte) (int, error)
	// Close stops the filter and releases the device; a blocked
	// ReadSection returns an error.
	Close() error
}

// CAHandle is an open CA (descrambler) device.
type CAHandle interface {
	SetPID(pid uint16, index int32) error           // CA_SET_PID
	SetDescr(index, parity uint32, cw []byte) error // CA_SET_DESCR
	Close() error
}

// deviceSink sends a connection's commands to the local DVB devices and
// feeds the sections read back into the connection's FILTER_DATA path.
type deviceSink struct {
	c    *conn
	devs Devices
}

var _ sink = (*deviceSink)(nil)

func (d *deviceSink) setFilter(p *programme, f *Filter) {
	if p.dmx == nil {
		h, err := d.devs.OpenDemux(p.id.adapter, p.id.demux)
		if err != nil {
			d.c.lim.log(slog.LevelWarn, "open demux", "adapter", p.id.adapter, "demux", p.id.demux, "err", err)
			return
		}
		p.dmx = h
		go d.readLoop(h, p.slot, f.Num)
	}
	if err := p.dmx.SetFilter(f); err != nil {
		d.c.lim.log(slog.LevelWarn, "DMX_SET_FILTER", "pid", f.PID, "err", err)
	}
}

// readLoop delivers the sections of one demux handle until it is closed.
func (d *deviceSink) readLoop(h DemuxHandle, slot, filter uint8) {
	buf := make([]byte, MaxSectionLen)
	for {
		n, err := h.ReadSection(buf)
		if err != nil {
			return
		}
		d.c.filterData(slot, filter, buf[:n])
	}
}

func (d *deviceSink) stopFilter(p *programme, f *Filter) {
	if p.dmx != nil {
		p.dmx.Close()
		p.dmx = nil
	}
}

func (d *deviceSink) ca(p *programme) CAHandle {
	if p.ca == nil {
		n := uint8(bits.TrailingZeros32(p.id.caMask))
		if p.id.caMask == 0 {
			n = 0
		}
		h, err := d.devs.OpenCA(p.id.adapter, n)
		if err != nil {
			d.c.lim.log(slog.LevelWarn, "open CA device", "adapter", p.id.adapter, "ca", n, "err", err)
			return nil
		}
		p.ca = h
	}
	return p.ca
}

func (d *deviceSink) setPID(p *programme, pid uint16, index int32) {
	if h := d.ca(p); h != nil {
		if err := h.SetPID(pid, index); err != nil {
			d.c.lim.log(slog.LevelWarn, "CA_SET_PID", "pid", pid, "err", err)
		}
	}
}

func (d *deviceSink) setDescr(p *programme, index, parity uint32, cw []byte) {
	if h := d.ca(p); h != nil {
		if err := h.SetDescr(index, parity, cw); err != nil {
			d.c.lim.log(slog.LevelWarn, "CA_SET_DESCR", "index", index, "err", err)
		}
	}
}

func (d *deviceSink) ecmInfo(*programme, *ECMInfo) {}

func (d *deviceSink) release(p *programme) {
	if p.ca != nil {
		p.ca.Close()
		p.ca = nil
	}
}
