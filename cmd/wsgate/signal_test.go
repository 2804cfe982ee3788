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
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
)

// startEcho starts an echo backend, closed when t ends, and returns its URL.
func startEcho(t *testing.T) string {
	t.Helper()
	rb, err := rawbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rb.Close)
	return "ws://" + rb.Addr() + "/"
}

// writeConfig writes a configuration file.
func writeConfig(t *testing.T, path, doc string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startFileGateway starts the binary's gateway on the configuration file
// at path, which it reads only when asked (no polling), stopped when t
// ends.
func startFileGateway(t *testing.T, path string) *gateway.Gateway {
	t.Helper()
	opts, _, err := gateway.ParseArgs([]string{"-listen", "127.0.0.1:0", "-loops", "2", "-config", path})
	if err != nil {
		t.Fatal(err)
	}
	opts.FilePollInterval = time.Hour // only SIGHUP and Reload read the file
	opts.ReconcileInterval = 200 * time.Millisecond
	opts.Logger = zaptest.NewLogger(t)
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	return gw
}

// TestSIGHUPReloadsTheFile: with file polling off, SIGHUP alone applies
// an edit, through the watcher runGateway starts: the new backend's pool
// fills.
func TestSIGHUPReloadsTheFile(t *testing.T) {
	echoes := []string{startEcho(t), startEcho(t)}
	path := filepath.Join(t.TempDir(), "wsgate.yaml")
	doc := "default_group: main\ngroups:\n  - name: main\n    backends:\n      - {url: %q, pool_target: 1}\n"
	writeConfig(t, path, fmt.Sprintf(doc, echoes[0]))
	gw := startFileGateway(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	hup := watchSIGHUP(reloadOnHUP(gw), zaptest.NewLogger(t))
	wg.Add(1)
	go hup.run(ctx, &wg)

	writeConfig(t, path, fmt.Sprintf(doc, echoes[1]))
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
