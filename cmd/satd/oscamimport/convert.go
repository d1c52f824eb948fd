package oscamimport

import (
	"encoding"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

// Files are the OSCam files to convert; any may be empty.
type Files struct {
	Conf, Server, User []byte
}

// Item is one OSCam key and what became of it.
type Item struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Key    string `json:"key"` // "[dvbapi] listen_port"
	Value  string `json:"value"`
	To     string `json:"to,omitempty"`     // satd key, when mapped
	Reason string `json:"reason,omitempty"` // why ignored, or a note on the mapping
	undo   func()
}

// Report lists what was mapped and what was ignored, with reasons.
type Report struct {
	Mapped  []Item   `json:"mapped"`
	Ignored []Item   `json:"ignored"`
	Notes   []string `json:"notes"` // file-level problems (bad lines)
}

// Result is a converted configuration and its report.
type Result struct {
	Config *config.Config
	Report Report
}

// ErrNothing is returned when none of the files has any content.
var ErrNothing = errors.New("no OSCam configuration given (oscam.conf, oscam.server or oscam.user)")

// sharingSections are OSCam protocols for sharing cards over a network;
// satd implements none of them, by design.
var sharingSections = map[string]bool{
	"cccam": true, "newcamd": true, "camd33": true, "camd35": true, "cs357x": true, "cs378x": true,
	"camd35tcp": true, "gbox": true, "radegast": true, "cacheex": true, "cache": true, "scam": true, "serial": true,
}

// sharingProtocols are reader protocols that talk to other card servers.
var sharingProtocols = map[string]bool{
	"cccam": true, "newcamd": true, "newcamd524": true, "newcamd525": true, "camd33": true, "camd35": true,
	"cs357x": true, "cs378x": true, "gbox": true, "radegast": true, "ghttp": true, "scam": true,
}

// targets says which satd sections an oscam.conf section's keys may land in.
var targets = map[string][]string{
	"global":      {"global", "balancer", "log", "web"},
	"loadbalance": {"balancer"},
	"dvbapi":      {"dvbapi"},
	"webif":       {"web"},
	"streamrelay": {"stream"},
}

// Convert maps the OSCam files onto cfg (typically config.Default()) and
// returns it with the report. Whatever it maps is valid for satd: a value
// that satd's validation refuses is put back to its previous value and
// reported as ignored with the reason.
func Convert(in Files, cfg *config.Config) (Result, error) {
	if len(in.Conf)+len(in.Server)+len(in.User) == 0 {
		return Result{}, ErrNothing
	}
	c := &converter{cfg: cfg}
	if len(in.Conf) > 0 {
		c.conf(in.Conf)
	}
	if len(in.Server) > 0 {
		c.server(in.Server)
	}
	if len(in.User) > 0 {
		c.user(in.User)
	}
	if err := c.repair(); err != nil {
		return Result{}, err
	}
	for i := range c.rep.Mapped {
		c.rep.Mapped[i].undo = nil
	}
	return Result{Config: cfg, Report: c.rep}, nil
}

type converter struct {
	cfg *config.Config
	rep Report
}

func (c *converter) ignore(file string, line int, key, value, reason string) {
	c.rep.Ignored = append(c.rep.Ignored, Item{File: file, Line: line, Key: key, Value: value, Reason: reason})
}

func (c *converter) mapped(it Item) { c.rep.Mapped = append(c.rep.Mapped, it) }

func (c *converter) conf(doc []byte) {
	const file = "oscam.conf"
	secs, problems := ParseINI(file, doc)
	c.rep.Notes = append(c.rep.Notes, problems...)
	for _, s := range secs {
		for _, kv := range s.Keys {
			key := "[" + s.Name + "] " + kv.Key
			switch {
			case c.special(file, s.Name, kv):
			case isEMM(kv.Key):
				c.ignore(file, kv.Line, key, kv.Value, emmReason)
			case sharingSections[s.Name]:
				c.ignore(file, kv.Line, key, kv.Value, "card-sharing protocol: satd implements none")
			default:
				c.generic(file, key, kv, targets[s.Name], "")
			}
		}
	}
}

// special handles the keys whose value changes shape on the way.
func (c *converter) special(file, section string, kv KeyValue) bool {
	key := "[" + section + "] " + kv.Key
	it := Item{File: file, Line: kv.Line, Key: key, Value: kv.Value}
	web, dvb, bal := &c.cfg.Web, &c.cfg.DVBAPI, &c.cfg.Balancer
	switch section + "." + kv.Key {
	case "global.failbantime":
		// OSCam counts failbantime in minutes (0 = no ban).
		n, err := strconv.Atoi(kv.Value)
		if err != nil || n < 0 {
			c.ignore(file, kv.Line, key, kv.Value, "not a whole number of minutes")
			return true
		}
		old := web.LoginLockout
		web.LoginLockout = config.Duration(time.Duration(n) * time.Minute)
		it.To, it.undo = "web.login_lockout", func() { web.LoginLockout = old }
		it.Reason = fmt.Sprintf("OSCam minutes: %s", time.Duration(n)*time.Minute)
		c.mapped(it)
	case "cache.max_time":
		// The CW cache is the balancer's own, not cache exchange.
		n, err := strconv.Atoi(kv.Value)
		if err != nil || n < 0 {
			c.ignore(file, kv.Line, key, kv.Value, "not a whole number of seconds")
			return true
		}
		old := bal.CacheMaxTime
		bal.CacheMaxTime = n
		it.To, it.undo = "balancer.cache_max_time", func() { bal.CacheMaxTime = old }
		c.mapped(it)
	case "dvbapi.pmt_mode":
		c.pmtMode(it)
	case "dvbapi.boxtype":
		c.boxType(it)
	case "webif.httpport":
		switch {
		case strings.HasPrefix(kv.Value, "+"):
			c.ignore(file, kv.Line, key, kv.Value, "HTTPS is not built in; satd serves the form over plain HTTP")
		case kv.Value == "0":
			old := web.Enabled
			web.Enabled = false
			it.To, it.undo = "web.enabled", func() { web.Enabled = old }
			c.mapped(it)
		default:
			old := web.Listen
			web.Listen = "0.0.0.0:" + kv.Value
			it.To, it.undo, it.Reason = "web.listen", func() { web.Listen = old }, "OSCam listens on every address"
			c.mapped(it)
		}
	case "webif.httpallowed":
		old := web.Allow
		allow, err := ranges(kv.Value)
		if err != nil {
			c.ignore(file, kv.Line, key, kv.Value, err.Error())
			return true
		}
		web.Allow = allow
		it.To, it.undo = "web.allow", func() { web.Allow = old }
		c.mapped(it)
	case "webif.httpuser", "webif.httppwd":
		c.ignore(file, kv.Line, key, "(not shown)", "passwords are not imported: satd asks for its own on the first visit and stores only an argon2id hash")
	case "dvbapi.listen_port":
		old := dvb.Listen
		if kv.Value == "0" || kv.Value == "" {
			dvb.Listen = ""
		} else {
			dvb.Listen = "0.0.0.0:" + kv.Value
			it.Reason = "OSCam listens on every address; satd admits only loopback unless dvbapi.allow lists clients"
		}
		it.To, it.undo = "dvbapi.listen", func() { dvb.Listen = old }
		c.mapped(it)
	default:
		return false
	}
	return true
}

// emmReason is why EMM and AU settings are not imported.
const emmReason = "EMM/AU (card updates) is not supported: satd does not write EMMs to cards"

// isEMM reports whether an OSCam key configures EMMs or AU.
func isEMM(key string) bool {
	switch key {
	case "au", "audisabled", "auprovid", "emmcache", "emmlogdir", "emmreassembly", "emm_reassembly",
		"saveemm", "blockemm", "disableemm", "emmlog", "emmfilter":
		return true
	}
	return strings.HasPrefix(key, "blockemm-") || strings.HasPrefix(key, "saveemm-") || strings.HasPrefix(key, "emm")
}

// listenSocket is enigma2's listen socket satd connects to in OSCam's
// pmt_mode 6.
const listenSocket = "/tmp/.listen.camd.socket"

// pmtMode maps [dvbapi] pmt_mode: 0 is camd.socket (satd's default), 6
// enigma2's listen socket (dvbapi.connect); the PMT-file modes have no
// equivalent.
func (c *converter) pmtMode(it Item) {
	dvb := &c.cfg.DVBAPI
	switch it.Value {
	case "0":
		it.To, it.Reason = "dvbapi.socket", "camd.socket, as satd serves by default"
		c.mapped(it)
	case "6":
		oldC, oldS := dvb.Connect, dvb.Socket
		dvb.Connect, dvb.Socket = listenSocket, ""
		it.To, it.undo = "dvbapi.connect", func() { dvb.Connect, dvb.Socket = oldC, oldS }
		it.Reason = "enigma2 listen socket: satd connects to " + listenSocket + " (and serves no camd.socket, like OSCam)"
		c.mapped(it)
	default:
		c.ignore(it.File, it.Line, it.Key, it.Value, "PMT-file modes are not supported; satd takes CA PMTs on camd.socket (pmt_mode 0) or enigma2's listen socket (6)")
	}
}

// boxType maps [dvbapi] boxtype: enigma2-style boxes program their own
// demux and CA devices (dvbapi.local_devices), pc types send everything
// back on the socket.
func (c *converter) boxType(it Item) {
	dvb := &c.cfg.DVBAPI
	old := dvb.LocalDevices
	switch strings.ToLower(it.Value) {
	case "dreambox", "dm7000", "duckbox", "ufs910", "ipbox", "ipbox-pmt":
		dvb.LocalDevices = true
		it.Reason = "enigma2 box: satd programs /dev/dvb/adapterN/demuxM and caM itself"
	case "pc", "pc-nodmx":
		dvb.LocalDevices = false
	default:
		c.ignore(it.File, it.Line, it.Key, it.Value, "box type not supported (dreambox-style enigma2 boxes and pc are)")
		return
	}
	it.To, it.undo = "dvbapi.local_devices", func() { dvb.LocalDevices = old }
	c.mapped(it)
}

// generic maps key onto the first field of the target sections whose TOML
// name is the OSCam key or whose description names it ("(OSCam: key)").
func (c *converter) generic(file, key string, kv KeyValue, sections []string, prefix string) {
	for _, name := range sections {
		sv, path, ok := sectionValue(c.cfg, name, prefix)
		if !ok {
			continue
		}
		fv, tname, ok := findField(sv, kv.Key)
		if !ok {
			continue
		}
		old := reflect.New(fv.Type()).Elem()
		old.Set(fv)
		note, err := setValue(fv, kv.Value)
		if err != nil {
			c.ignore(file, kv.Line, key, kv.Value, fmt.Sprintf("%s.%s: %v", path, tname, err))
			return
		}
		c.mapped(Item{File: file, Line: kv.Line, Key: key, Value: kv.Value, To: path + "." + tname, Reason: note, undo: func() { fv.Set(old) }})
		return
	}
	c.ignore(file, kv.Line, key, kv.Value, "no equivalent in satd")
}

// sectionValue finds a satd section by TOML name (or the reader being built
// when prefix names it).
func sectionValue(cfg *config.Config, name, prefix string) (reflect.Value, string, bool) {
	if prefix != "" {
		i := len(cfg.Readers) - 1
		return reflect.ValueOf(&cfg.Readers[i]).Elem(), prefix, true
	}
	v := reflect.ValueOf(cfg).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if tomlName(f) == name && f.Type.Kind() == reflect.Struct {
			return v.Field(i), name, true
		}
	}
	return reflect.Value{}, "", false
}

func findField(v reflect.Value, key string) (reflect.Value, string, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("toml") == "" {
			if fv, n, ok := findField(v.Field(i), key); ok {
				return fv, n, true
			}
			continue
		}
		name := tomlName(f)
		if name == key {
			return v.Field(i), name, true
		}
		if names := config.OSCamName(f.Tag.Get("comment")); names != "" {
			for _, alias := range strings.FieldsFunc(names, func(r rune) bool { return r == ',' || r == '/' || r == ' ' }) {
				if strings.EqualFold(alias, key) {
					return v.Field(i), name, true
				}
			}
		}
	}
	return reflect.Value{}, "", false
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

var durationType = reflect.TypeFor[config.Duration]()

// setValue converts an OSCam value for field fv; note explains a unit
// conversion.
func setValue(fv reflect.Value, s string) (note string, err error) {
	if fv.Type() == durationType {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			// OSCam times are milliseconds, small values seconds
			// (clienttimeout < 100 means seconds).
			d := time.Duration(n) * time.Millisecond
			if n < 100 {
				d = time.Duration(n) * time.Second
			}
			fv.SetInt(int64(d))
			return "OSCam milliseconds/seconds converted to " + d.String(), nil
		}
	}
	if u, ok := fv.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return "", u.UnmarshalText([]byte(s))
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "1", "yes", "true", "on":
			fv.SetBool(true)
		case "0", "no", "false", "off", "":
			fv.SetBool(false)
		default:
			return "", fmt.Errorf("%q is not 0 or 1", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, fv.Type().Bits())
		if err != nil {
			return "", fmt.Errorf("%q is not a whole number", s)
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// CAIDs, provider IDs and SIDs are hex in OSCam.
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, fv.Type().Bits())
		if err != nil {
			return "", fmt.Errorf("%q is not a hex number in range", s)
		}
		fv.SetUint(n)
	case reflect.Slice:
		parts := strings.Split(s, ",")
		out := reflect.MakeSlice(fv.Type(), 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			e := reflect.New(fv.Type().Elem()).Elem()
			if _, err := setValue(e, p); err != nil {
				return "", err
			}
			out = reflect.Append(out, e)
		}
		fv.Set(out)
	default:
		return "", fmt.Errorf("no conversion to %s", fv.Type())
	}
	return "", nil
}

// ranges converts httpallowed ("a.b.c.d-e.f.g.h,::1") to addresses and
// CIDR ranges.
func ranges(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or range", part)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil || b.Less(a) || a.Is4() != b.Is4() {
			return nil, fmt.Errorf("%q is not an address range", part)
		}
		out = append(out, rangePrefixes(a, b)...)
	}
	return out, nil
}

// rangePrefixes returns the CIDR blocks that exactly cover a..b (at most
// 64; a wider spread is truncated).
func rangePrefixes(a, b netip.Addr) []string {
	var out []string
	for len(out) < 64 {
		bits := a.BitLen()
		for bits > 0 {
			wider := netip.PrefixFrom(a, bits-1).Masked()
			if wider.Addr() != a || lastAddr(wider).Compare(b) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(a, bits)
		out = append(out, p.String())
		last := lastAddr(p)
		if last.Compare(b) >= 0 || !last.Next().IsValid() {
			break
		}
		a = last.Next()
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// repair puts back every mapped value that satd's validation refuses and
// reports it as ignored, so the result always passes `satd -check`.
func (c *converter) repair() error {
	for round := 0; round < 3; round++ {
		err := c.cfg.Validate()
		if err == nil {
			return nil
		}
		var ps config.Problems
		if !errors.As(err, &ps) {
			return err
		}
		undone := false
		for _, p := range ps {
			for i := 0; i < len(c.rep.Mapped); i++ {
				it := c.rep.Mapped[i]
				if it.undo == nil || !(it.To == p.Key || strings.HasPrefix(p.Key, it.To+"[")) {
					continue
				}
				it.undo()
				it.undo, it.To, it.Reason = nil, "", "refused by satd's validation: "+p.Msg
				c.rep.Ignored = append(c.rep.Ignored, it)
				c.rep.Mapped = append(c.rep.Mapped[:i], c.rep.Mapped[i+1:]...)
				i--
				undone = true
			}
		}
		if !undone {
			return fmt.Errorf("converted configuration is not valid: %w", err)
		}
	}
	return c.cfg.Validate()
}
