package oscamimport

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"satd.dev/satd/cmd/satd/config"
)

func readFiles(t *testing.T) Files {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "testdata", "oscam")
	var in Files
	for name, dst := range map[string]*[]byte{"oscam.conf": &in.Conf, "oscam.server": &in.Server, "oscam.user": &in.User} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		*dst = b
	}
	return in
}

// TestConvertRepresentative converts the testdata configuration and checks
// the result, re-parsed from its TOML as `satd -check` would, is valid and
// carries what OSCam said.
func TestConvertRepresentative(t *testing.T) {
	res, err := Convert(readFiles(t), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.Config.Encode(&b); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("converted.toml", b.Bytes())
	if err != nil {
		t.Fatalf("converted configuration does not pass validation:\n%v\n%s", err, b.String())
	}
	if cfg.Web.Listen != "0.0.0.0:8888" || cfg.DVBAPI.Listen != "0.0.0.0:9000" || cfg.DVBAPI.User != "dvbapi" {
		t.Errorf("web.listen %q, dvbapi.listen %q, dvbapi.user %q", cfg.Web.Listen, cfg.DVBAPI.Listen, cfg.DVBAPI.User)
	}
	wantAllow := []string{"127.0.0.1", "192.168.0.0/16", "10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}
	if !reflect.DeepEqual(cfg.Web.Allow, wantAllow) {
		t.Errorf("web.allow = %v, want %v", cfg.Web.Allow, wantAllow)
	}
	var labels []string
	for _, r := range cfg.Readers {
		labels = append(labels, r.Label+"/"+r.Protocol)
	}
	if got := strings.Join(labels, " "); got != "Slot_1_Conax/internal slot2/internal constcw/constcw" {
		t.Errorf("readers %s", got)
	}
	if cfg.Readers[1].Enable {
		t.Error("slot2 has enable = 0 in OSCam")
	}
	reasons := map[string]string{}
	for _, it := range res.Report.Ignored {
		reasons[it.Key] = it.Reason
		if it.Reason == "" {
			t.Errorf("%s ignored without a reason", it.Key)
		}
	}
	for key, want := range map[string]string{
		"[cccam] port":                  "card-sharing",
		"[webif] httppwd":               "not imported",
		"[reader] remote":               "card-sharing",
		"[reader] usb":                  "not supported",
		"[global] nice":                 "no equivalent",
		"[reader Slot_1_Conax] cardmhz": "real clock (mhz)",
		"[account friend] group":        "network clients",
	} {
		if !strings.Contains(reasons[key], want) {
			t.Errorf("%s: reason %q, want it to mention %q", key, reasons[key], want)
		}
	}
	for _, it := range append(res.Report.Mapped, res.Report.Ignored...) {
		if strings.Contains(it.Value, "secret") {
			t.Errorf("report shows a password: %+v", it)
		}
	}
}

// TestConvertRefusedValueReverted maps a value satd refuses and checks it is
// put back and reported, never left invalid.
func TestConvertRefusedValueReverted(t *testing.T) {
	res, err := Convert(Files{Conf: []byte("[webif]\nhttpport = 99999\n[dvbapi]\nuser = tvh\n")}, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.Web.Listen != config.DefaultWeb().Listen || res.Config.DVBAPI.User != "tvh" {
		t.Errorf("web.listen %q, dvbapi.user %q", res.Config.Web.Listen, res.Config.DVBAPI.User)
	}
	found := false
	for _, it := range res.Report.Ignored {
		found = found || it.Key == "[webif] httpport" && strings.Contains(it.Reason, "port must be 1-65535")
	}
	if !found {
		t.Errorf("refused httpport not reported: %+v", res.Report.Ignored)
	}
	if _, err := Convert(Files{}, config.Default()); err != ErrNothing {
		t.Errorf("no files: %v", err)
	}
}

func TestParseINI(t *testing.T) {
	secs, problems := ParseINI("x", []byte("\ufeff# c\nstray = 1\n[Global]\n Key = a = b \n; c\nnonsense\n[broken\n[reader]\nlabel=x\n"))
	if len(secs) != 2 || secs[0].Name != "global" || secs[0].Keys[0] != (KeyValue{"key", "a = b", 4}) || secs[1].Keys[0].Value != "x" {
		t.Errorf("sections %+v", secs)
	}
	want := []string{`x:2: key "stray" before any [section]`, `x:6: "nonsense" is not key = value`, `x:7: section header "[broken" has no closing ]`}
	if !reflect.DeepEqual(problems, want) {
		t.Errorf("problems %q", problems)
	}
}

func FuzzConvert(f *testing.F) {
	in := Files{}
	for _, name := range []string{"oscam.conf", "oscam.server", "oscam.user"} {
		b, _ := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "oscam", name))
		switch name {
		case "oscam.conf":
			in.Conf = b
		case "oscam.server":
			in.Server = b
		default:
			in.User = b
		}
	}
	f.Add(in.Conf, in.Server, in.User)
	f.Add([]byte("[webif]\nhttpallowed = 10.0.0.9-10.0.0.1\n"), []byte("[reader]\nlabel=\nprotocol=mouse\ncaid=ZZ\n"), []byte(""))
	f.Add([]byte("[global]\nclienttimeout=\n[dvbapi]\nlisten_port=0"), []byte("[reader]\nprotocol=internal\n[reader]\nprotocol=internal\n"), []byte("[account]"))
	f.Fuzz(func(t *testing.T, conf, server, user []byte) {
		res, err := Convert(Files{Conf: conf, Server: server, User: user}, config.Default())
		if err != nil {
			return
		}
		if err := res.Config.Validate(); err != nil {
			t.Fatalf("Convert returned an invalid configuration: %v", err)
		}
	})
}

// TestConvertIssue15Mappings covers each mapping of issue 15 point 13.
func TestConvertIssue15Mappings(t *testing.T) {
	type check func(t *testing.T, res Result, mapped, ignored map[string]Item)
	for _, tc := range []struct {
		name         string
		conf, server string
		check        check
	}{
		{name: "failbantime is minutes", conf: "[global]\nfailbantime = 3\n", check: func(t *testing.T, res Result, m, _ map[string]Item) {
			if got := res.Config.Web.LoginLockout.Std(); got != 3*time.Minute || m["[global] failbantime"].To != "web.login_lockout" {
				t.Errorf("login_lockout %s, item %+v", got, m["[global] failbantime"])
			}
		}},
		{name: "cache max_time", conf: "[cache]\nmax_time = 20\ndelay = 5\n", check: func(t *testing.T, res Result, m, ig map[string]Item) {
			if res.Config.Balancer.CacheMaxTime != 20 || m["[cache] max_time"].To != "balancer.cache_max_time" {
				t.Errorf("cache_max_time %d, item %+v", res.Config.Balancer.CacheMaxTime, m["[cache] max_time"])
			}
			if _, ok := ig["[cache] delay"]; !ok {
				t.Error("[cache] delay not reported")
			}
		}},
		{name: "pmt_mode 6 is the enigma2 listen socket", conf: "[dvbapi]\npmt_mode = 6\nboxtype = dreambox\n", check: func(t *testing.T, res Result, m, _ map[string]Item) {
			d := res.Config.DVBAPI
			if d.Connect != "/tmp/.listen.camd.socket" || d.Socket != "" || !d.LocalDevices {
				t.Errorf("connect %q socket %q local_devices %v", d.Connect, d.Socket, d.LocalDevices)
			}
			if m["[dvbapi] pmt_mode"].To != "dvbapi.connect" || m["[dvbapi] boxtype"].To != "dvbapi.local_devices" {
				t.Errorf("items %+v %+v", m["[dvbapi] pmt_mode"], m["[dvbapi] boxtype"])
			}
		}},
		{name: "boxtype pc", conf: "[dvbapi]\nboxtype = pc\npmt_mode = 4\n", check: func(t *testing.T, res Result, m, ig map[string]Item) {
			if res.Config.DVBAPI.LocalDevices || res.Config.DVBAPI.Connect != "" {
				t.Errorf("%+v", res.Config.DVBAPI)
			}
			if !strings.Contains(ig["[dvbapi] pmt_mode"].Reason, "not supported") {
				t.Errorf("pmt_mode 4: %+v", ig["[dvbapi] pmt_mode"])
			}
		}},
		{name: "caid remap reported", server: "[reader]\nlabel = r\nprotocol = mouse\ndevice = /dev/ttyUSB0\ncaid = 1830&FFF0:1843,0B00\n", check: func(t *testing.T, res Result, m, ig map[string]Item) {
			if it := ig["[reader r] caid"]; !strings.Contains(it.Reason, "remap to 1843 is not supported") {
				t.Errorf("remap item %+v", it)
			}
			if got, _ := res.Config.Readers[0].CAID.MarshalText(); string(got) != "1830&FFF0,0B00" {
				t.Errorf("caid %s", got)
			}
		}},
		{name: "lists written as OSCam strings", server: "[reader]\nlabel = r\nprotocol = mouse\ndevice = /dev/ttyUSB0\ncaid = 1830&FFF0,1843\n", check: func(t *testing.T, res Result, _, _ map[string]Item) {
			var b bytes.Buffer
			if err := res.Config.Encode(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), `caid = "1830&FFF0,1843"`) || strings.Contains(b.String(), "[[reader.caid]]") {
				t.Errorf("encoded reader caid:\n%s", b.String())
			}
			back, err := config.Parse("x.toml", b.Bytes())
			if err != nil || !reflect.DeepEqual(back.Readers[0].CAID, res.Config.Readers[0].CAID) {
				t.Errorf("round trip: %v %+v", err, back)
			}
		}},
		{name: "EMM and AU not supported", conf: "[dvbapi]\nau = 1\n", server: "[reader]\nlabel = r\nprotocol = mouse\ndevice = /dev/ttyUSB0\nemmcache = 1,3,2,0\nblockemm-unknown = 1\nsaveemm-u = 1\n", check: func(t *testing.T, res Result, _, ig map[string]Item) {
			for _, k := range []string{"[dvbapi] au", "[reader r] emmcache", "[reader r] blockemm-unknown", "[reader r] saveemm-u"} {
				if !strings.Contains(ig[k].Reason, "EMM/AU") {
					t.Errorf("%s: %+v", k, ig[k])
				}
			}
		}},
		{name: "smargo is known", server: "[reader]\nlabel = s\nprotocol = smargo\ndevice = /dev/ttyUSB0\n", check: func(t *testing.T, _ Result, _, ig map[string]Item) {
			if it := ig["[reader] s"]; !strings.Contains(it.Reason, "not supported") {
				t.Errorf("smargo: %+v", it)
			}
		}},
		{name: "lb_savepath default documented as used", check: func(t *testing.T, _ Result, _, _ map[string]Item) {
			f, _ := reflect.TypeFor[config.Config]().FieldByName("Balancer")
			sf, _ := f.Type.FieldByName("LBSavePath")
			if !strings.Contains(sf.Tag.Get("comment"), "<global.state_dir>/oscam.stat") {
				t.Errorf("lb_savepath comment %q does not name satd's default", sf.Tag.Get("comment"))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Files{Conf: []byte(tc.conf), Server: []byte(tc.server)}
			if len(in.Conf)+len(in.Server) == 0 {
				in.Conf = []byte("[global]\n")
			}
			res, err := Convert(in, config.Default())
			if err != nil {
				t.Fatal(err)
			}
			m, ig := map[string]Item{}, map[string]Item{}
			for _, it := range res.Report.Mapped {
				m[it.Key] = it
			}
			for _, it := range res.Report.Ignored {
				ig[it.Key] = it
			}
			tc.check(t, res, m, ig)
		})
	}
}
