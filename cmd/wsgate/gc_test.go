package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestGCPercentDefault: without GOGC the binary collects at 50; with it,
// GOGC's value stands.
func TestGCPercentDefault(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	t.Setenv("GOGC", "")
	tuneGC() // set, even if empty: Go's runtime read it, not us
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the percent moved to %d", got)
	}
	t.Setenv("GOGC", "x") // t.Setenv restores; unset it for the next case
	unsetenv(t, "GOGC")
	tuneGC()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("without GOGC the percent is %d, want %d", got, defaultGCPercent)
	}
}

// unsetenv removes key for the rest of the test (t.Setenv before it
// restores the old value at the end).
func unsetenv(t *testing.T, key string) {
	t.Helper()
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
