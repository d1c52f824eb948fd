//go:build linux

package dvbapi

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LinuxDevices opens Linux DVB API v5 devices under Root (/dev/dvb).
type LinuxDevices struct {
	Root string
}

var _ Devices = LinuxDevices{}

// OpenDemux opens Root/adapterA/demuxD.
func (l LinuxDevices) OpenDemux(adapter, demux uint8) (DemuxHandle, error) {
	p := filepath.Join(l.root(), fmt.Sprintf("adapter%d", adapter), fmt.Sprintf("demux%d", demux))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open demux %s: %w", p, err)
	}
	return &linuxDemux{f: f}, nil
}

// OpenCA opens Root/adapterA/caN.
func (l LinuxDevices) OpenCA(adapter, ca uint8) (CAHandle, error) {
	p := filepath.Join(l.root(), fmt.Sprintf("adapter%d", adapter), fmt.Sprintf("ca%d", ca))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ca %s: %w", p, err)
	}
	return &linuxCA{f: f}, nil
}

func (l LinuxDevices) root() string {
	if l.Root == "" {
		return "/dev/dvb"
	}
	return l.Root
}

type linuxDemux struct{ f *os.File }

// ioctl issues request with the struct in b (host byte order).
func ioctl(f *os.File, req uint32, b []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	cerr := rc.Control(func(fd uintptr) {
		var p uintptr
		if len(b) > 0 {
			p = uintptr(unsafe.Pointer(&b[0]))
		}
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), p)
	})
	if cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// SetFilter issues DMX_SET_FILTER with struct dmx_sct_filter_params:
// pid u16, filter/mask/mode [16], 2 bytes padding, timeout u32, flags u32.
func (d *linuxDemux) SetFilter(f *Filter) error {
	var b [60]byte
	ne := binary.NativeEndian
	ne.PutUint16(b[0:], f.PID)
	copy(b[2:], f.Filter[:])
	copy(b[18:], f.Mask[:])
	copy(b[34:], f.Mode[:])
	ne.PutUint32(b[52:], f.Timeout)
	ne.PutUint32(b[56:], f.Flags)
	return ioctl(d.f, OpDmxSetFilter, b[:])
}

func (d *linuxDemux) ReadSection(b []byte) (int, error) { return d.f.Read(b) }

func (d *linuxDemux) Close() error {
	ioctl(d.f, OpDmxStop, nil)
	return d.f.Close()
}

type linuxCA struct{ f *os.File }

// SetPID issues CA_SET_PID with struct ca_pid {u32 pid; s32 index}.
func (c *linuxCA) SetPID(pid uint16, index int32) error {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(pid))
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return ioctl(c.f, OpCASetPID, b[:])
}

// SetDescr issues CA_SET_DESCR with struct ca_descr {u32 index; u32
// parity; u8 cw[8]}.
func (c *linuxCA) SetDescr(index, parity uint32, cw []byte) error {
	var b [16]byte
	binary.NativeEndian.PutUint32(b[0:], index)
	binary.NativeEndian.PutUint32(b[4:], parity)
	copy(b[8:], cw)
	return ioctl(c.f, OpCASetDescr, b[:])
}

func (c *linuxCA) Close() error { return c.f.Close() }
