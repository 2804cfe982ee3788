package hostile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHarnessNofileLimit checks both ways the suite lowers a child's
// descriptor limit: prlimit(1) when installed, and the re-exec of the
// test binary (TestMain) otherwise.
func TestHarnessNofileLimit(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for name, cmd := range map[string]*exec.Cmd{
		"launcher": launcher(sh, []string{"-c", "ulimit -n"}, 300),
		"reexec":   reexecLauncher(sh, []string{"-c", "ulimit -n"}, 300),
	} {
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", name, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != "300" {
			t.Errorf("%s: ulimit -n in the child = %q, want 300", name, got)
		}
	}
}
