package goroutineproxy

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind: pools, their reconcile loops, the connections they
// hold and the echo backends. gnet's shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}
