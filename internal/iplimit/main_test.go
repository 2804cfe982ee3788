package iplimit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the package's tests, all together, leave no
// goroutine behind (the workers and sweeper of the concurrency test).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
