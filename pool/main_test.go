package pool

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind. They run on fake connections; the goroutines are
// their own (racing failures and probe claims), and none may outlive its
// test. gnet's shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}
