package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestLoggerNeverWaitsOnStderr: with stderr a pipe nobody reads, 100,000
// log calls return; once the pipe is read, every line not counted as
// dropped is there, whole and in order, and the drops are reported.
func TestLoggerNeverWaitsOnStderr(t *testing.T) {
	const n = 100_000
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log, sink, flush, err := newLoggerTo(w, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); flush(); _ = w.Close() }) // ends the sink's goroutine if the test fails early

	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for i := range n {
			log.Info("line", zap.Int("i", i))
		}
	}()
	select {
	case <-logged:
	case <-time.After(time.Minute): // a guard against hanging, not a speed limit
		t.Fatal("logging blocked on a stderr nobody reads")
	}
	dropped := sink.Dropped()
	if dropped == 0 {
		t.Fatalf("%d lines fit in a pipe nobody reads and a 1 MiB queue?", n)
	}

	read := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); read <- b }()
	flush()
	if got := sink.Dropped(); got != dropped {
		t.Fatalf("%d more lines dropped while the pipe was read", got-dropped)
	}
	_ = w.Close()
	out := <-read

	var lines, reported int64
	last := -1
	for l := range bytes.Lines(out) {
		var e struct {
			Msg     string `json:"msg"`
			I       int    `json:"i"`
			Dropped int64  `json:"dropped"`
		}
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if e.Msg != "line" {
			reported += e.Dropped // the sink's report of a gap
			continue
		}
		if e.I <= last {
			t.Fatalf("line %d after line %d", e.I, last)
		}
		last = e.I
		lines++
	}
	if lines+dropped != n || reported != dropped {
		t.Fatalf("%d lines out, %d dropped, %d reported dropped; want %d lines in all and every drop reported",
			lines, dropped, reported, n)
	}
	t.Logf("%d lines out, %d dropped", lines, dropped)
}

func TestLoggerRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct{ name, format, level string }{
		{"format", "xml", "info"},
		{"level", "json", "loud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, sink, _, err := newLoggerTo(io.Discard, tc.format, tc.level); err == nil || sink != nil {
				t.Fatalf("newLoggerTo(%q, %q) = sink %v, error %v; want no sink and an error", tc.format, tc.level, sink, err)
			}
		})
	}
}

// Regression (hardening issue, defect 2): when the server fails by itself
// (its event engine stopped), the process must exit non-zero at once so
// its supervisor restarts it, instead of lingering without its loops.
func TestServerFailureExitsNonZero(t *testing.T) {
	done := make(chan struct{})
	close(done)
	code := waitForSignal(zap.NewNop(), done, func() error { return errors.New("engine stopped") },
		func(context.Context) error { t.Fatal("shutdown ran for a failed server"); return nil }, time.Second)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}
