// Package testutil holds what every test in the repository shares: the
// one way to wait for a condition. Tests poll for what they expect with a
// deadline, and a failure says what was still missing; none sleeps and
// hopes (see STYLE.md).
//
// Ownership: its functions are called from the test's own goroutine (they
// may call t.Fatal, which must not run on another goroutine).
package testutil
