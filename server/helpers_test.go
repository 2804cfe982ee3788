package server

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
)

// startTestServer starts a server with cfg (listening on a free loopback
// port unless cfg.Addr says otherwise) and stops it when t ends.
func startTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// waitFor polls cond until it holds or timeout passes (then t fails):
// testutil.WaitFor, under the name this package's tests (and those being
// written in parallel) already call. New tests may call testutil directly.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}
