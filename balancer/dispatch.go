package balancer

import (
	"crypto/md5"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// MaxECMLen is the largest ECM section the Dispatcher copies.
const MaxECMLen = 1024

// Errors returned by Submit and New.
var (
	ErrNoClient   = errors.New("balancer: ECM without client")
	ErrECMTooLong = errors.New("balancer: ECM longer than 1024 bytes")
	ErrNoReaders  = errors.New("balancer: no readers")
	// ErrRestartNeeded reports an option change that applies only when satd
	// restarts (table capacities, the reader list).
	ErrRestartNeeded = errors.New("balancer: change needs a restart")
)

type slotFlags uint16

const (
	fEligible slotFlags = 1 << iota
	fActive
	fFallback
	fLocal
	fFixedFallback
	fForcedFallback
	fSent
	fAnswered
	fPending   // waiting for the identical ECM's request to this reader
	fImmediate // pending on a request that is already answered
	fBusy      // the reader's queue was full: offered again at busyAt
)

// BusyRetry is how often a request a reader's full queue refused is
// offered again (until the client timeout).
const BusyRetry Time = 20

// ecmSlot is one reader's state for one in-flight ECM.
type ecmSlot struct {
	flags   slotFlags
	rc      Result
	blockRC Result
	role    Role
	why     whyCode
	stat    int32 // entry index cached at selection, -1 = none
	value   int64 // selection value; 0 = not valued (OSCam)
	shown   int64 // value kept for explanations
	time    int32
	a, b    int32 // explanation parameters
	sentAt  Time
	cw      [16]byte
}

// inflight is an ECM being answered or kept for late answers and reuse.
type inflight struct {
	used                      bool
	answered                  bool
	hasHash                   bool
	stage                     int8
	prefer                    int8
	result                    Result
	by                        int16
	gen                       uint32
	caid, srvid, chid, ecmlen uint16
	pmtpid, ecmpid, vpid      uint16
	busyAt                    Time // next offer to busy readers; 0 = none
	prid                      uint32
	groups                    Groups
	hash                      uint64
	md5                       [16]byte
	dataLen                   int
	data                      [MaxECMLen]byte
	client                    Client
	tag                       uint64
	arrival                   Time
	fbAt, ctAt, freeAt        Time
	origin                    int32 // identical ECM this one follows, -1
	firstFollower, nextFollow int32
	older, newer              int32 // arrival order
	slots                     []ecmSlot
}

// ReaderSpec is a reader and its load-balancer options.
type ReaderSpec struct {
	Reader  Reader
	Options ReaderConfig
}

type readerState struct {
	r            Reader
	name         string
	local        bool
	set          ReaderSettings
	stats        statTable
	usageLevel   int32
	usageCount   int32
	usageTime    Time
	usageTimeSet bool
	lbLast       Time
	lbLastSet    bool
}

// Counters are the Dispatcher's event and eviction counters.
type Counters struct {
	ECMs, CacheHits, NoMatchingReader    uint64
	Found, NotFound, Timeouts            uint64
	StatEvictions, InflightEvictions     uint64
	CacheEvictions, ExplainEvictions     uint64
	LateAnswers, QueueFull, StatsCleaned uint64
	Saves, SaveErrors, StatsRecorded     uint64
}

// Dispatcher is the ECM load balancer and dispatcher.
type Dispatcher struct {
	mu      sync.Mutex
	set     Settings
	clock   Clock
	log     *slog.Logger
	readers []readerState

	ecms         []inflight
	freeList     int32 // free in-flight entries through nextFollow
	oldest       int32
	newest       int32
	ecmIndex     hashIndex
	timers       deadlineHeap
	cache        cwCache
	explain      explainTable
	counters     Counters
	saveCount    int
	nextClean    Time
	cleanStarted bool

	wake    chan struct{}
	saveReq chan struct{}
	saveMu  sync.Mutex // serialises saves
	snap    []statEntry
}

// New builds a Dispatcher with fixed-size tables from cfg. Problems in
// cfg or the reader options are returned together; clamps are logged.
func New(cfg Config, readers []ReaderSpec, clock Clock, log *slog.Logger) (*Dispatcher, error) {
	var errs []error
	cfg.Validate(func(k, m string) { errs = append(errs, fmt.Errorf("balancer.%s: %s", k, m)) })
	for _, rs := range readers {
		rs.Options.Validate(func(k, m string) { errs = append(errs, fmt.Errorf("reader %s: %s: %s", rs.Reader.Name(), k, m)) })
	}
	if len(readers) == 0 {
		errs = append(errs, ErrNoReaders)
	}
	if len(readers) > maxReaders {
		errs = append(errs, fmt.Errorf("balancer: %d readers; at most %d", len(readers), maxReaders))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if clock == nil {
		clock = NewRealClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := NewSettings(cfg, log)
	d := &Dispatcher{set: s, clock: clock, log: log, wake: make(chan struct{}, 1), saveReq: make(chan struct{}, 1)}
	for _, rs := range readers {
		d.readers = append(d.readers, readerState{
			r: rs.Reader, name: rs.Reader.Name(), local: rs.Reader.Local(),
			set: NewReaderSettings(rs.Reader.Name(), rs.Options, log), stats: newStatTable(s.StatEntries),
		})
	}
	n := len(readers)
	d.ecms = make([]inflight, s.MaxInflight)
	slots := make([]ecmSlot, s.MaxInflight*n)
	for i := range d.ecms {
		d.ecms[i].slots = slots[i*n : (i+1)*n : (i+1)*n]
		d.ecms[i].nextFollow = int32(i + 1)
	}
	d.ecms[len(d.ecms)-1].nextFollow = -1
	d.freeList = 0
	d.oldest, d.newest = -1, -1
	d.ecmIndex = newHashIndex(s.MaxInflight)
	d.timers = newDeadlineHeap(s.MaxInflight)
	d.cache = newCWCache(s.CacheEntries)
	d.explain = newExplainTable(s.ExplainServices, n)
	return d, nil
}

// Settings returns the option values in force.
func (d *Dispatcher) Settings() Settings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.set
}

// Reconfigure applies new options to a running Dispatcher, keeping its
// stats, cache and ECMs in flight. opts are the readers' options in the
// order given to New. The table capacities (stat_entries, max_inflight,
// cache_entries, explain_services) and the reader list are fixed at start:
// Reconfigure keeps them and returns ErrRestartNeeded when they differ, after
// applying everything else.
func (d *Dispatcher) Reconfigure(cfg Config, opts []ReaderConfig) error {
	var errs []error
	cfg.Validate(func(k, m string) { errs = append(errs, fmt.Errorf("balancer.%s: %s", k, m)) })
	if len(opts) != len(d.readers) {
		return fmt.Errorf("%w: %d readers configured, %d running", ErrRestartNeeded, len(opts), len(d.readers))
	}
	for i, o := range opts {
		o.Validate(func(k, m string) { errs = append(errs, fmt.Errorf("reader %s: %s: %s", d.readers[i].name, k, m)) })
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s := NewSettings(cfg, d.log)
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.set
	s.StatEntries, s.MaxInflight, s.CacheEntries, s.ExplainServices = old.StatEntries, old.MaxInflight, old.CacheEntries, old.ExplainServices
	d.set = s
	for i := range d.readers {
		d.readers[i].set = NewReaderSettings(d.readers[i].name, opts[i], d.log)
	}
	fresh := NewSettings(cfg, slog.New(slog.DiscardHandler))
	if fresh.StatEntries != old.StatEntries || fresh.MaxInflight != old.MaxInflight ||
		fresh.CacheEntries != old.CacheEntries || fresh.ExplainServices != old.ExplainServices {
		return fmt.Errorf("%w: table capacities change only at start", ErrRestartNeeded)
	}
	return nil
}

// Counters returns a copy of the counters.
func (d *Dispatcher) Counters() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.counters
	for i := range d.readers {
		c.StatEvictions += d.readers[i].stats.evictions
	}
	return c
}

// ReaderIndex returns the index of the reader with the given name, or -1.
func (d *Dispatcher) ReaderIndex(name string) int {
	for i := range d.readers {
		if d.readers[i].name == name {
			return i
		}
	}
	return -1
}

// Submit takes a client ECM. The client's ECMAnswered is called exactly
// once, possibly before Submit returns (cache hit, no matching reader).
func (d *Dispatcher) Submit(ecm *ECM) error {
	if ecm.Client == nil {
		return ErrNoClient
	}
	if len(ecm.Data) > MaxECMLen {
		return ErrECMTooLong
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.counters.ECMs++
	var sum [16]byte
	var h uint64
	has := len(ecm.Data) > 0
	if has {
		sum = md5.Sum(ecmHashInput(ecm.Data))
		h = ecmHash(ecm.CAID, &sum)
		if cw, by, ok := d.cache.lookup(h, ecm.CAID, &sum, ecm.Groups, now, d.set.CacheMaxTimeMs); ok {
			d.counters.CacheHits++
			ecm.Client.ECMAnswered(Answer{Tag: ecm.Tag, Result: Cache, CW: cw, Reader: by})
			return nil
		}
	}
	e, idx := d.allocECM(now)
	e.caid, e.prid, e.srvid, e.chid, e.ecmlen = ecm.CAID, ecm.PRID, ecm.SrvID, ecm.CHID, ecm.Len
	e.pmtpid, e.ecmpid, e.vpid = ecm.PMTPID, ecm.ECMPID, ecm.VPID
	if e.chid == 0 && has {
		e.chid = CHIDFromECM(ecm.CAID, ecm.Data)
	}
	e.groups, e.client, e.tag, e.arrival = ecm.Groups, ecm.Client, ecm.Tag, now
	e.hasHash, e.hash, e.md5 = has, h, sum
	e.dataLen = copy(e.data[:], ecm.Data)
	e.prefer = int8(d.set.PreferLocalCards)
	d.match(e)
	origin := int32(-1)
	if has {
		origin = d.findOrigin(e, idx, now)
	}
	if d.set.Mode != 0 && d.set.Mode <= 3 {
		if origin >= 0 && d.sameMatch(&d.ecms[origin], e) {
			d.copySelection(&d.ecms[origin], e)
		} else {
			d.selectBest(e, now)
		}
	}
	d.explain.record(e, now, &d.set)
	nActive, nLocal := 0, 0
	for i := range e.slots {
		if f := e.slots[i].flags; f&fActive != 0 {
			nActive++
			if f&fLocal != 0 && f&fFallback == 0 {
				nLocal++
			}
		}
	}
	if e.prefer > 0 && nLocal == 0 {
		e.prefer = 0
	}
	if nActive == 0 {
		d.counters.NoMatchingReader++
		d.finish(e, NotFound, -1, [16]byte{}, now)
		d.freeECM(idx)
		return nil
	}
	if has {
		if origin >= 0 {
			e.origin = origin
			e.nextFollow = d.ecms[origin].firstFollower
			d.ecms[origin].firstFollower = idx
		} else {
			d.ecmIndex.insert(h, idx)
		}
	}
	e.fbAt = now + Time(d.autoTimeout(e, d.set.fallbackTimeoutFor(e.caid)))
	e.ctAt = now + Time(d.autoTimeout(e, d.set.ClientTimeout))
	e.freeAt = now + Time(((d.set.ClientTimeout+500)/1000+1)*1000)
	d.requestStage(e, idx, now)
	d.reschedule(idx)
	return nil
}

func ecmHashInput(data []byte) []byte {
	if len(data) > 3 {
		return data[3:]
	}
	return data
}

func ecmHash(caid uint16, sum *[16]byte) uint64 {
	var a, b uint64
	for i := 0; i < 8; i++ {
		a = a<<8 | uint64(sum[i])
		b = b<<8 | uint64(sum[8+i])
	}
	return mix64(a^uint64(caid)) ^ b
}

// allocECM takes a free in-flight entry, evicting the oldest when full:
// its client gets TIMEOUT if it was still unanswered (no stats written).
func (d *Dispatcher) allocECM(now Time) (*inflight, int32) {
	if d.freeList < 0 {
		old := d.oldest
		if oe := &d.ecms[old]; !oe.answered {
			d.finish(oe, Timeout, -1, [16]byte{}, now)
		}
		d.counters.InflightEvictions++
		d.freeECM(old)
	}
	idx := d.freeList
	e := &d.ecms[idx]
	d.freeList = e.nextFollow
	gen, slots := e.gen+1, e.slots
	*e = inflight{used: true, gen: gen, slots: slots, origin: -1, firstFollower: -1, nextFollow: -1, by: -1, older: d.newest, newer: -1}
	if d.newest >= 0 {
		d.ecms[d.newest].newer = idx
	} else {
		d.oldest = idx
	}
	d.newest = idx
	return e, idx
}

// freeECM releases an in-flight entry and every link to it.
func (d *Dispatcher) freeECM(idx int32) {
	e := &d.ecms[idx]
	d.timers.remove(idx)
	if e.origin >= 0 {
		o := &d.ecms[e.origin]
		for p := &o.firstFollower; *p >= 0; p = &d.ecms[*p].nextFollow {
			if *p == idx {
				*p = e.nextFollow
				break
			}
		}
	} else if e.hasHash && e.slots != nil {
		d.ecmIndex.remove(e.hash, idx)
	}
	for f := e.firstFollower; f >= 0; {
		next := d.ecms[f].nextFollow
		d.ecms[f].origin, d.ecms[f].nextFollow = -1, -1
		f = next
	}
	if e.older >= 0 {
		d.ecms[e.older].newer = e.newer
	} else {
		d.oldest = e.newer
	}
	if e.newer >= 0 {
		d.ecms[e.newer].older = e.older
	} else {
		d.newest = e.older
	}
	e.used = false
	e.client = nil
	e.gen++
	e.nextFollow = d.freeList
	d.freeList = idx
}
