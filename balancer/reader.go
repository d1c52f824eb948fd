package balancer

import "time"

// Result is the outcome of a request or of an ECM, with OSCam's codes.
type Result int8

// Result values (OSCam rc codes). Cache is OSCam's CACHE1/CACHE2: the CW
// came from the CW cache or from an identical ECM already in flight.
const (
	Found    Result = 0
	Cache    Result = 1
	NotFound Result = 4
	Timeout  Result = 5
	Invalid  Result = 8
)

// String returns the lower-case name used by lbsim and logs.
func (r Result) String() string {
	switch r {
	case Found:
		return "found"
	case Cache:
		return "cache"
	case NotFound:
		return "notfound"
	case Timeout:
		return "timeout"
	case Invalid:
		return "invalid"
	}
	return "unknown"
}

// Role says why a reader is asked for an ECM.
type Role uint8

// Roles of an asked reader.
const (
	RolePrimary Role = iota
	RoleFallback
	RoleLearning
	RoleReopen
)

// String returns the role name used by lbsim.
func (r Role) String() string {
	return [...]string{"primary", "fallback", "learning", "reopen"}[r]
}

// Status is what a reader reports about itself at the moment of an ECM.
// The slices belong to the reader and are only read.
type Status struct {
	Enabled bool
	// Present is true when a card is inserted (physical reader) or the
	// connection is up (network reader).
	Present bool
	// CAIDs the ready card reports; empty = not known (no check).
	CAIDs []uint16
	// Providers are the provider idents the card has entitlements for;
	// empty = not known (no check).
	Providers []uint32
	// Services the card reports as decodable; empty = not known.
	Services []uint16
	// NoECM is true for a reader that answers from the request's identity
	// (CAID, provider, service, PIDs) and never looks at the ECM, like a
	// constant-CW file. Its CWs are not put in the CW cache and its
	// requests are not shared between ECMs of different services, since
	// identical ECM bytes on two services get different CWs from it; the
	// dvbapi front door asks such readers at once for services whose CA
	// descriptors carry no ECM PID.
	NoECM bool
}

// Reader is a card reader or proxy the Dispatcher can ask. Implementations
// live elsewhere (cardreader, lbsim's simulated readers); the Dispatcher
// calls Status and Submit with its lock held, so neither may block or call
// back into the Dispatcher synchronously.
type Reader interface {
	// Name is the reader label used in the stats file and explanations.
	Name() string
	// Local is true for a physical card reader (OSCam's non-network reader).
	Local() bool
	// Status reports eligibility information; it must not allocate.
	Status() Status
	// Submit queues req on the reader's own queue and returns at once;
	// false means the queue is full: backpressure, not an answer. The
	// Dispatcher offers the request again every BusyRetry until the
	// client timeout, and meanwhile the next stage's readers may answer;
	// the ECM never fails because of it. The reader later calls
	// Dispatcher.Answer with req.Token. req.ECM is only valid until then.
	Submit(req Request) bool
}

// Token identifies one request to one reader.
type Token struct {
	slot   uint32
	gen    uint32
	reader uint16
}

// Request is an ECM request to one reader.
type Request struct {
	Token Token
	Role  Role
	CAID  uint16
	PRID  uint32
	SrvID uint16
	CHID  uint16
	// PMTPID, ECMPID and VPID are the service's PMT PID, the PID the ECM
	// came on and its video PID when the client knows them, else 0
	// (constant.cw rules match on them).
	PMTPID, ECMPID, VPID uint16
	// ECM is the ECM section; it points into the Dispatcher's buffer.
	ECM []byte
	// Tag is the client's tag of the ECM, for tracing.
	Tag uint64
}

// Answer is what the client gets for an ECM.
type Answer struct {
	Tag    uint64
	Result Result
	CW     [16]byte
	// Reader is the index of the reader that produced the CW, or -1.
	Reader int
	// After is the time from the ECM's arrival to this answer.
	After time.Duration
}

// Client receives the answer for its ECMs. ECMAnswered is called exactly
// once per submitted ECM, with the Dispatcher's lock held: it must not
// block or call the Dispatcher.
type Client interface {
	ECMAnswered(a Answer)
}

// ECM is a client's request. Data is copied; it may be empty, in which
// case the ECM is unique for the CW cache and deduplication.
type ECM struct {
	CAID  uint16
	PRID  uint32
	SrvID uint16
	CHID  uint16
	// PMTPID, ECMPID and VPID are passed to the readers (Request).
	PMTPID, ECMPID, VPID uint16
	Len                  uint16
	Data                 []byte
	Groups               Groups // 0 = every group
	Client               Client
	Tag                  uint64
}

// CHIDFromECM returns OSCam's channel id ("sub id") read from fixed ECM
// byte offsets, or 0 for systems without one.
func CHIDFromECM(caid uint16, ecm []byte) uint16 {
	off := -1
	switch caid >> 8 {
	case 0x01:
		off = 7
	case 0x05:
		off = 8
	case 0x06:
		off = 6
	case 0x09:
		off = 11
	case 0x4A:
		if caid != 0x4AE0 && caid != 0x4AE1 && caid != 0x4AEE && caid != 0x4AF8 {
			off = 6
		}
	}
	if off < 0 || len(ecm) < off+2 {
		return 0
	}
	return uint16(ecm[off])<<8 | uint16(ecm[off+1])
}
