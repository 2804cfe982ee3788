package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// startEcho starts an echo backend, stopped when t ends.
func startEcho(t *testing.T) string {
	t.Helper()
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Loops: 1, Handler: server.Echo{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return "ws://" + s.Addr() + "/"
}

// TestSIGHUPReloadsTheFile: with file polling off, SIGHUP alone applies
// an edit, through the watcher runGateway starts: the new backend's pool
// fills.
func TestSIGHUPReloadsTheFile(t *testing.T) {
	echoes := []string{startEcho(t), startEcho(t)}
	path := filepath.Join(t.TempDir(), "wsgate.yaml")
	doc := "default_group: main\ngroups:\n  - name: main\n    backends:\n      - {url: %q, pool_target: 1}\n"
	write := func(backend string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(fmt.Sprintf(doc, backend)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(echoes[0])
	opts, _, err := gateway.ParseArgs([]string{"-listen", "127.0.0.1:0", "-loops", "2", "-config", path})
	if err != nil {
		t.Fatal(err)
	}
	opts.FilePollInterval = time.Hour // only SIGHUP reloads
	opts.ReconcileInterval = 200 * time.Millisecond
	opts.Logger = zaptest.NewLogger(t)
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	hup := watchSIGHUP(gw.Reload, opts.Logger)
	wg.Add(1)
	go hup.run(ctx, &wg)

	write(echoes[1])
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "SIGHUP reload", func() bool {
		for _, b := range gw.Pool.Backends() {
			if b.Settings().URL == echoes[1] && b.Idle.Load() == 1 {
				return true
			}
		}
		return false
	})
}
