package uart

import (
	"os"
	"testing"
	"time"
)

// hangGuard bounds a wait for what the simulated far end sends: it only
// says a test hung, never how fast the line is (the answer takes
// microseconds, a loaded machine may take seconds).
const hangGuard = time.Minute

// TestMain gives the echo check a hang guard as its slack: in these tests
// the far end of the line is a goroutine behind a pty, which a loaded
// machine can starve for longer than a real UART's echo ever takes. Tests
// of a missing echo set their own short slack.
func TestMain(m *testing.M) {
	EchoSlack = hangGuard
	os.Exit(m.Run())
}
