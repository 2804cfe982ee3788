package reconcile_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind (each test that starts a reconciler also checks its own
// end; see checkNoLeaks). gnet's shared worker pool is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"))
}
