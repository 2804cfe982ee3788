package readpause

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind: the gnet engines they run and their clients. gnet's
// shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}
