package proxyproto

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind (the writers at the far end of the net.Pipe tests).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
