package reconcile_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind (each test that starts a reconciler also checks its own
// end; see checkNoLeaks). gnet's shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}
