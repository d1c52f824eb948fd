package dvbapi

import "time"

// Result is the outcome of an ECM request.
type Result int8

// Result values.
const (
	Found Result = iota
	NotFound
	Timeout
)

func (r Result) String() string {
	switch r {
	case Found:
		return "found"
	case NotFound:
		return "notfound"
	case Timeout:
		return "timeout"
	}
	return "invalid"
}

// ECMRequest is one ECM handed to the ECMSolver. The request and Data are
// owned by the programme that sent them and are only valid during the Solve
// call: a solver that answers later must copy what it needs.
type ECMRequest struct {
	CAID   uint16
	PRID   uint32
	SID    uint16 // service id (programme number)
	CHID   uint16 // channel id when pinned, else 0
	PID    uint16 // ECM PID
	PMTPID uint16
	VPID   uint16 // the programme's first video stream PID, 0 = none
	Data   []byte // the ECM section, table_id first; for a service
	// without ECMs (BISS), a stand-in built from the CA PMT (FakeECM)
	Tag  uint64 // opaque; must be returned in ECMAnswer.Tag
	Done ECMDone
}

// ECMAnswer is the solver's answer to one ECMRequest.
type ECMAnswer struct {
	Tag    uint64
	Result Result
	// CW is the control word pair: bytes 0-7 even, 8-15 odd.
	CW [16]byte
	// System, Reader and Protocol name the card system, the reader label
	// and the reader protocol for ECM_INFO and /tmp/ecm.info.
	System, Reader, Protocol string
	// After is the time the answer took (ECM_INFO "ecm time").
	After time.Duration
	// NoECM is set when the reader answers without looking at the ECM
	// (a constant-CW file): its CW does not change with the ECM.
	NoECM bool
}

// ECMDone receives answers. ECMAnswered is called exactly once per Solve,
// possibly before Solve returns, from any goroutine; it does not block.
type ECMDone interface {
	ECMAnswered(a ECMAnswer)
}

// ECMSolver is the ECM back end (the balancer's dispatcher in the daemon).
// Solve must not call back into the dvbapi package other than through
// req.Done, and must not block for long.
type ECMSolver interface {
	Solve(req *ECMRequest)
}

// CAIDServer is optionally implemented by an ECMSolver that knows which
// CAIDs/providers a ready reader serves; such ECM PIDs are tried first.
type CAIDServer interface {
	CanServe(caid uint16, prid uint32) bool
}

// NoECMServer is optionally implemented by an ECMSolver whose readers may
// answer a CAID without ECMs (a constant-CW file declares it): the front
// door then asks at once for services whose CA descriptor carries no
// usable ECM PID, as it always does for BISS (CAID 2600/2602).
type NoECMServer interface {
	AnswersWithoutECM(caid uint16, prid uint32) bool
}

// ECMCanceler is optionally implemented by an ECMSolver that keeps
// requests in flight: Cancel drops every reference to done, whose
// connection has closed, so a closed connection is released at once
// instead of when its last answer arrives. Answers still due are dropped.
type ECMCanceler interface {
	Cancel(done ECMDone)
}
