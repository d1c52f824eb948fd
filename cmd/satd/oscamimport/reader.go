package oscamimport

import (
	"fmt"
	"strings"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/hal/slot"
)

// unsupportedReaders are local reader types satd has no driver for.
var unsupportedReaders = map[string]bool{
	"smargo":      true, // Smargo Smartreader+ in its own mode
	"smartreader": true, "sc8in1": true, "mp35": true, "stapi": true, "stinger": true,
	"serial": true, "db2com": true, "sci": true, "emu": true,
}

func (c *converter) server(doc []byte) {
	const file = "oscam.server"
	secs, problems := ParseINI(file, doc)
	c.rep.Notes = append(c.rep.Notes, problems...)
	// Room for every reader up front: the undo closures point into the slice.
	c.cfg.Readers = make([]config.Reader, 0, len(secs))
	labels := map[string]bool{}
	for _, s := range secs {
		if s.Name != "reader" {
			for _, kv := range s.Keys {
				c.ignore(file, kv.Line, "["+s.Name+"] "+kv.Key, kv.Value, "oscam.server has only [reader] sections")
			}
			continue
		}
		c.reader(file, s, labels)
	}
}

func value(s Section, key string) (KeyValue, bool) {
	for _, kv := range s.Keys {
		if kv.Key == key {
			return kv, true
		}
	}
	return KeyValue{}, false
}

// reader converts one [reader] section, or reports it ignored as a whole.
func (c *converter) reader(file string, s Section, labels map[string]bool) {
	lkv, _ := value(s, "label")
	pkv, _ := value(s, "protocol")
	proto := strings.ToLower(pkv.Value)
	whole := fmt.Sprintf("[reader] %s", lkv.Value)
	switch {
	case sharingProtocols[proto]:
		c.ignore(file, s.Line, whole, "protocol = "+proto, "network reader of a card-sharing protocol: satd reads local cards only")
		return
	case unsupportedReaders[proto]:
		c.ignore(file, s.Line, whole, "protocol = "+proto, "reader type not supported by satd (internal, mouse, pcsc and constcw are)")
		return
	case !isProtocol(proto):
		c.ignore(file, s.Line, whole, "protocol = "+proto, "unknown reader protocol")
		return
	}
	r := config.DefaultReader()
	if e, ok := config.DefaultElement("reader"); ok {
		r = *e.(*config.Reader)
	}
	c.cfg.Readers = append(c.cfg.Readers, r)
	i := len(c.cfg.Readers) - 1
	prefix := fmt.Sprintf("reader[%d]", i)
	label := uniqueLabel(lkv.Value, i, labels)
	c.cfg.Readers[i].Label = label
	it := Item{File: file, Line: lkv.Line, Key: "[reader] label", Value: lkv.Value, To: prefix + ".label"}
	if label != lkv.Value {
		it.Reason = fmt.Sprintf("renamed to %q (satd labels are 1-32 letters, digits, _ . -, unique)", label)
	}
	c.mapped(it)
	for _, kv := range s.Keys {
		key := "[reader " + label + "] " + kv.Key
		switch {
		case kv.Key == "label":
			continue
		case isEMM(kv.Key):
			c.ignore(file, kv.Line, key, kv.Value, emmReason)
			continue
		case kv.Key == "caid" && strings.Contains(kv.Value, ":"):
			kv = c.caidRemap(file, key, kv)
		case readerNotImported[kv.Key] != "":
			c.ignore(file, kv.Line, key, kv.Value, readerNotImported[kv.Key])
			continue
		}
		c.generic(file, key, kv, []string{"reader"}, prefix)
	}
	c.internalSlot(file, s, prefix, &c.cfg.Readers[i])
}

// readerNotImported are OSCam reader keys satd has on purpose no key for,
// with the reason shown in the report.
var readerNotImported = map[string]string{
	"cardmhz": "satd runs and times the card at the slot's real clock (mhz); OSCam's nominal card clock has no use there",
}

// internalSlot keeps an internal reader on a kernel smartcard device
// (/dev/sciN) as it is: satd drives it through the same driver as OSCam.
// Any other internal reader is disabled unless the file gives its GPIO
// lines: satd drives such a slot's UART and interface chip itself, and
// only the user knows the board's lines.
func (c *converter) internalSlot(file string, s Section, prefix string, r *config.Reader) {
	if r.Protocol != "internal" || (r.Pins.CMDVCC != "" && r.Pins.RST != "" && r.Pins.OFF != "") {
		return
	}
	if slot.IsSCIDevice(r.Device) {
		return
	}
	r.Enable = false
	c.rep.Notes = append(c.rep.Notes, fmt.Sprintf(
		"%s:%d: %s (%s) is an internal slot on %q, which is no kernel smartcard device (/dev/sciN): satd drives such a slot through the UART and GPIO lines; "+
			"describe device and pins (docs/slots.md), then set enable = true. It is imported disabled.", file, s.Line, prefix, r.Label, r.Device))
}

// caidRemap reports the remapping entries of a reader's caid list
// (1830&FFF0:1843 asks the card with CAID 1843) as not supported and
// returns the list without the remaps, whose CAID&mask part still filters.
func (c *converter) caidRemap(file, key string, kv KeyValue) KeyValue {
	var keep []string
	for _, e := range strings.Split(kv.Value, ",") {
		from, to, remap := strings.Cut(strings.TrimSpace(e), ":")
		if remap {
			c.ignore(file, kv.Line, key, e, fmt.Sprintf("CAID remap to %s is not supported: the reader is asked for %s as is", to, from))
		}
		keep = append(keep, from)
	}
	kv.Value = strings.Join(keep, ",")
	return kv
}

func isProtocol(p string) bool {
	for _, q := range config.Protocols {
		if p == q {
			return true
		}
	}
	return false
}

func uniqueLabel(l string, i int, seen map[string]bool) string {
	l = strings.Map(func(r rune) rune {
		if config.IsLabelChar(r) {
			return r
		}
		return '_'
	}, strings.TrimSpace(l))
	if len(l) > 28 {
		l = l[:28]
	}
	if l == "" {
		l = fmt.Sprintf("reader%d", i)
	}
	base := l
	for n := 2; seen[l]; n++ {
		l = fmt.Sprintf("%s-%d", base, n)
	}
	seen[l] = true
	return l
}

// user reports the accounts of oscam.user: satd has no network clients, so
// accounts have nothing to map to; the dvbapi user keeps its name.
func (c *converter) user(doc []byte) {
	const file = "oscam.user"
	secs, problems := ParseINI(file, doc)
	c.rep.Notes = append(c.rep.Notes, problems...)
	for _, s := range secs {
		ukv, _ := value(s, "user")
		for _, kv := range s.Keys {
			key := "[" + s.Name + " " + ukv.Value + "] " + kv.Key
			v := kv.Value
			if kv.Key == "pwd" {
				v = "(not shown)"
			}
			reason := "accounts serve network clients; satd serves the local receiver over dvbapi only"
			if s.Name == "account" && ukv.Value == c.cfg.DVBAPI.User {
				reason = "account of the dvbapi client: satd needs no account for it (dvbapi.user names it in the statistics)"
			}
			c.ignore(file, kv.Line, key, v, reason)
		}
	}
}
