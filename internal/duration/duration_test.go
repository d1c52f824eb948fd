package duration

import (
	"strings"
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Std() != 90*time.Second {
		t.Fatalf("1m30s: %v %v", d.Std(), err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Fatalf("MarshalText = %q", b)
	}
	err := d.UnmarshalText([]byte("90"))
	if err == nil || !strings.Contains(err.Error(), `"90" is not a duration`) {
		t.Fatalf("90 without unit: %v", err)
	}
	if d.Std() != 90*time.Second {
		t.Fatal("a failed parse changed the value")
	}
}
