package uart

import (
	"os"
	"testing"
	"time"
)

// TestMain gives the echo check a generous slack: in these tests the far
// end of the line is a goroutine behind a pty, which a loaded machine can
// starve for longer than a real UART's echo ever takes. Tests of a missing
// echo set their own short slack.
func TestMain(m *testing.M) {
	EchoSlack = 5 * time.Second
	os.Exit(m.Run())
}
