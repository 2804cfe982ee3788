package testutil

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the goroutine.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestCheckFor(t *testing.T) {
	tests := []struct {
		name     string
		timeout  time.Duration
		okAfter  int    // calls before cond returns nil; -1 = never
		wantFail string // substring of the failure; "" = passes
		minCalls int
	}{
		{name: "holds at once", timeout: time.Second, okAfter: 0, minCalls: 1},
		{name: "holds at once with zero timeout", timeout: 0, okAfter: 0, minCalls: 1},
		{name: "holds after a few polls", timeout: 5 * time.Second, okAfter: 5, minCalls: 6},
		{name: "never holds: last error reported", timeout: 20 * time.Millisecond, okAfter: -1,
			wantFail: "after 20ms: idle 0, want 2 (call", minCalls: 2},
		{name: "zero timeout still calls once", timeout: 0, okAfter: -1, wantFail: "after 0s: idle 0", minCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			calls := 0
			start := time.Now()
			CheckFor(f, tc.timeout, func() error {
				calls++
				if tc.okAfter >= 0 && calls > tc.okAfter {
					return nil
				}
				return fmt.Errorf("idle 0, want 2 (call %d)", calls)
			})
			took := time.Since(start)
			if calls < tc.minCalls {
				t.Errorf("cond called %d times, want at least %d", calls, tc.minCalls)
			}
			switch {
			case tc.wantFail == "" && f.failed != "":
				t.Errorf("failed: %s", f.failed)
			case tc.wantFail != "" && !strings.Contains(f.failed, tc.wantFail):
				t.Errorf("failure %q, want it to contain %q", f.failed, tc.wantFail)
			case tc.wantFail != "" && !strings.HasSuffix(f.failed, fmt.Sprintf("(call %d)", calls)):
				t.Errorf("failure %q does not report the last error (call %d)", f.failed, calls)
			case tc.wantFail != "" && took < tc.timeout:
				t.Errorf("gave up after %v, before the %v timeout", took, tc.timeout)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	f := &fakeTB{TB: t}
	WaitFor(f, 10*time.Millisecond, "the pool to fill", func() bool { return false })
	if want := "still waiting for the pool to fill"; !strings.Contains(f.failed, want) {
		t.Errorf("failure %q, want it to contain %q", f.failed, want)
	}
	f = &fakeTB{TB: t}
	n := 0
	start := time.Now()
	took := WaitFor(f, time.Second, "three calls", func() bool { n++; return n == 3 })
	if f.failed != "" || n != 3 {
		t.Errorf("failed %q after %d calls", f.failed, n)
	}
	if took < 2*PollInterval || took > time.Since(start) {
		t.Errorf("took %v for three calls two polls apart, outside [%v, %v]", took, 2*PollInterval, time.Since(start))
	}
}
