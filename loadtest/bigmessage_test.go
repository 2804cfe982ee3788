package loadtest

import (
	"os/exec"
	"strconv"
	"testing"
)

// TestBigMessage runs `loadtest big-message` on the test binary's echo
// endpoint and gateway with a 4 MiB message: both echo it whole and close
// 1000, and RSS was sampled. It asserts nothing about the figures.
func TestBigMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	child := testChild
	cmds := bigCommands{
		echo:    func(addr string, max int) *exec.Cmd { return child("echo-big", addr, strconv.Itoa(max)) },
		gateway: func(args []string) *exec.Cmd { return child("wsgate", append(args, "-log-level", "warn")...) },
	}
	results, err := runBigMessage(cmds, 4<<20, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want endpoint and gateway", len(results))
	}
	for _, r := range results {
		if r.CloseCode != 1000 || r.BaseRSS == 0 || r.PeakRSS < r.BaseRSS {
			t.Errorf("%s: %+v", r.Through, r)
		}
	}
}
