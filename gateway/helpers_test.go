package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// The harness builds every gateway under test from command-line flags,
// through gateway.ParseArgs and gateway.New: the path cmd/wsgate takes, so
// a test runs with the binary's defaults and sets anything else the way a
// user would. Only what no flag reaches is adjusted after parsing (see
// newGateway).

// testGateway is a started gateway with the backends the harness started
// for it.
type testGateway struct {
	*gateway.Gateway
	backends []*server.Server
}

// url is the gateway's WebSocket URL for path.
func (g *testGateway) url(path string) string { return "ws://" + g.Server.Addr() + path }

// backend returns the pool's view of backend i (in -backend order).
func (g *testGateway) backend(i int) *pool.Backend { return g.Pool.Backends()[i] }

// backendURL is the -backend (or configuration file) URL of a backend
// listening on addr.
func backendURL(addr string) string { return "ws://" + addr + "/" }

// startBackend starts a backend: a server.Server with h (nil: echo) on one
// loop, on addr (empty: a free loopback port), stopped when t ends. Its
// writes are never refused, so a backend can flood the gateway.
func startBackend(t *testing.T, h server.Handler, addr string) *server.Server {
	t.Helper()
	if h == nil {
		h = server.Echo{}
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv, err := server.New(server.Config{Addr: addr, Loops: 1, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// startGateway starts one backend per handler (nil: echo) and a gateway
// in front of them built from args plus one -backend flag per backend.
func startGateway(t *testing.T, handlers []server.Handler, args ...string) *testGateway {
	t.Helper()
	g := &testGateway{}
	args = append([]string(nil), args...)
	for _, h := range handlers {
		b := startBackend(t, h, "")
		g.backends = append(g.backends, b)
		args = append(args, "-backend", backendURL(b.Addr()))
	}
	g.Gateway = newGateway(t, args...)
	start(t, g.Gateway)
	return g
}

// startGatewayArgs starts a gateway from args alone: its backends (flags
// or -config) are the caller's.
func startGatewayArgs(t *testing.T, args ...string) *testGateway {
	t.Helper()
	g := &testGateway{Gateway: newGateway(t, args...)}
	start(t, g.Gateway)
	return g
}

// newGateway builds, without starting it, the gateway the binary would
// run with args (and -listen on a free loopback port). A flag the chosen
// configuration source ignores fails the test: it would test nothing.
// Only what is not a flag is set afterwards: faster shard and reconcile
// ticks, so tests need not wait seconds, and the test's logger.
func newGateway(t *testing.T, args ...string) *gateway.Gateway {
	t.Helper()
	args = append(append([]string(nil), args...), "-listen", "127.0.0.1:0")
	opts, warnings, err := gateway.ParseArgs(args)
	if err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	if len(warnings) > 0 {
		t.Fatalf("flags %q: %s", args, strings.Join(warnings, "; "))
	}
	opts.Server.TickInterval = 10 * time.Millisecond
	opts.ReconcileInterval = 200 * time.Millisecond
	opts.Logger = zaptest.NewLogger(t)
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatalf("gateway.New with flags %q: %v", args, err)
	}
	return gw
}

// start starts gw and stops it when t ends.
func start(t *testing.T, gw *gateway.Gateway) {
	t.Helper()
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
}

// writeConfig writes a configuration file for -config into t's temporary
// directory and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wsgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func dial(t *testing.T, url string, h http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, mt int, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(mt, msg); err != nil {
		t.Fatal(err)
	}
	gotType, got, err := c.ReadMessage()
	if err != nil || gotType != mt || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: got type %d, %d bytes, err %v", len(msg), gotType, len(got), err)
	}
}

// expectClose reads until the server's close frame and checks its code.
func expectClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("want close %d, got %v", code, err)
		}
		return
	}
}

// counter is a condition for testutil.CheckFor: nil once get() == want,
// else an error naming what and both values.
func counter(what string, get func() int64, want int64) func() error {
	return func() error {
		if got := get(); got != want {
			return fmt.Errorf("%s = %d, want %d", what, got, want)
		}
		return nil
	}
}
