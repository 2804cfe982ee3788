package admin

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind: the in-process gateways (proxy, backends, reconcile
// workers, admin endpoint) and the HTTP clients that query them. gnet's
// shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}
