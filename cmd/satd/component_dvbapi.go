package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/dvbapi"
)

func init() {
	registerComponent(componentSpec{name: "dvbapi", order: 40, build: buildDVBAPI})
}

// solver returns the ECM back end of the dvbapi front door: the balancer's
// dispatcher through an ecmBridge, or, when no reader is configured, an
// answer of "not found" to every ECM, as OSCam gives when no reader matches.
func (d *dvbapiComponent) solver(ctx context.Context) dvbapi.ECMSolver {
	if d.e.daemon == nil || d.e.daemon.balancer() == nil || d.e.daemon.readersPart() == nil {
		return noMatchingReader{}
	}
	units := d.e.daemon.readersPart().units
	b := newECMBridge(d.e.daemon.balancer(), d.e.cfg.Balancer.MaxInflight,
		func(i int) readerInfo { return units[i].info() },
		func(caid uint16, prid uint32) bool { return anyServes(units, caid, prid) })
	b.noECM = func(caid uint16, prid uint32) bool { return anyServesWithoutECM(units, caid, prid) }
	go b.run(ctx)
	return b
}

// noMatchingReader answers every ECM "not found".
type noMatchingReader struct{}

func (noMatchingReader) Solve(req *dvbapi.ECMRequest) {
	req.Done.ECMAnswered(dvbapi.ECMAnswer{Tag: req.Tag, Result: dvbapi.NotFound})
}

// dvbapiComponent runs the dvbapi server on the configured transports.
type dvbapiComponent struct {
	e   env
	cfg config.DVBAPI
	srv *dvbapi.Server
	tcp net.Addr // the address ListenTCP bound (port 0 resolved), or nil
}

func buildDVBAPI(e env) (component, error) {
	if !e.cfg.DVBAPI.Enabled {
		return nil, nil
	}
	return &dvbapiComponent{e: e, cfg: e.cfg.DVBAPI}, nil
}

func allowList(a []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		} else if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return out
}

func (d *dvbapiComponent) Start(ctx context.Context) error {
	c := d.cfg
	opt := dvbapi.Options{
		Solver:        d.solver(ctx),
		Log:           d.e.log,
		ServerName:    "satd " + version,
		ECMInfoPath:   c.ECMInfo,
		Allow:         allowList(c.Allow),
		FilterTimeout: c.FilterTimeout.Std(), AnswerTimeout: c.AnswerTimeout.Std(), RetryMax: c.RetryMax.Std(),
		MaxConns: c.MaxConns, HandshakeTimeout: c.HandshakeTimeout.Std(), ConstantCWOnce: !c.ConstCWResend,
	}
	if c.LocalDevices {
		opt.Devices = dvbapi.LinuxDevices{Root: c.DeviceRoot}
	}
	d.srv = dvbapi.NewServer(opt)
	if c.Listen != "" {
		addr, err := d.srv.ListenTCP(c.Listen)
		if err != nil {
			return err
		}
		d.tcp = addr
		d.e.log.Info("dvbapi listening", "tcp", addr.String())
	}
	if c.Socket != "" {
		if err := d.srv.ListenUnix(c.Socket); err != nil {
			return err
		}
		d.e.log.Info("dvbapi listening", "unix", c.Socket)
	}
	if c.Connect != "" {
		d.srv.Connect(c.Connect, time.Second)
	}
	return nil
}

// Reload applies the allow-list; transport changes need a restart.
func (d *dvbapiComponent) Reload(cfg *config.Config) error {
	n := cfg.DVBAPI
	d.srv.SetAllow(allowList(n.Allow))
	var changed []string
	if n.Listen != d.cfg.Listen {
		changed = append(changed, "listen")
	}
	if n.Socket != d.cfg.Socket {
		changed = append(changed, "socket")
	}
	if n.Connect != d.cfg.Connect {
		changed = append(changed, "connect")
	}
	d.cfg.Allow = n.Allow
	if len(changed) > 0 {
		return needsRestart("dvbapi %s changed", strings.Join(changed, ", "))
	}
	return nil
}

func (d *dvbapiComponent) Stop(ctx context.Context) error {
	if d.srv == nil {
		return nil
	}
	return d.srv.Close(ctx)
}

// TCPAddr returns the address the TCP listener bound ("127.0.0.1:9000"; a
// configured port 0 resolved), or "" when there is none.
func (d *dvbapiComponent) TCPAddr() string {
	if d.tcp == nil {
		return ""
	}
	return d.tcp.String()
}

// dvbapiPart returns the running dvbapi component, or nil.
func (d *daemon) dvbapiPart() *dvbapiComponent {
	c, _ := part[*dvbapiComponent](d)
	return c
}

// dvbapiServices returns the programmes dvbapi clients are descrambling,
// or nil when the front door is off.
func (d *daemon) dvbapiServices() []dvbapi.Service {
	if c := d.dvbapiPart(); c != nil && c.srv != nil {
		return c.srv.Services(nil)
	}
	return nil
}
