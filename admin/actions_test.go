package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
)

func TestPoolsJSONAndText(t *testing.T) {
	g := startGateway(t, gatewayOpts{backends: 2, poolSize: 4, policy: "reuse"})
	g.waitFull()
	c := g.dialWS("/")
	defer c.Close()
	echo(t, c, "x")

	v := g.pools()
	if !v.Ready || v.Config.Version != 1 || v.Config.LastReload != "ok" {
		t.Fatalf("pools: ready %v (%s), config %+v", v.Ready, v.Reason, v.Config)
	}
	if len(v.Backends) != 2 || len(v.Shards) != 2 {
		t.Fatalf("pools: %d backends, %d shards, want 2 and 2", len(v.Backends), len(v.Shards))
	}
	var leased, leases, sessions int64
	for i, b := range v.Backends {
		if b.ID != i || b.URL != g.backendURL(i) || b.State != "active" || !b.Healthy || b.Policy != "reuse" || b.Target != 4 {
			t.Errorf("backend %d: %+v", i, b)
		}
		var idle, bl int64
		for _, s := range b.Shards {
			idle += s.Idle
			bl += s.Leased
		}
		if idle != b.Idle || bl != b.Leased {
			t.Errorf("backend %d: shards add up to idle %d leased %d, backend says %d %d", i, idle, bl, b.Idle, b.Leased)
		}
		if b.Total != b.Dialing+b.Idle+b.Leased+b.Releasing+b.Closing {
			t.Errorf("backend %d: total %d is not the sum of its states %+v", i, b.Total, b.ConnCounts)
		}
		leased += b.Leased
		leases += b.Leases
	}
	for _, s := range v.Shards {
		sessions += s.Sessions
		if len(s.Backends) != 2 {
			t.Errorf("shard %d: %d backend rows, want 2", s.Shard, len(s.Backends))
		}
	}
	if leased != 1 || leases != 1 || sessions != 1 {
		t.Errorf("pools: leased %d leases %d sessions %d, want 1 each", leased, leases, sessions)
	}

	code, text := g.get("/pools?format=text")
	if code != http.StatusOK {
		t.Fatalf("text: %d %s", code, text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	var header, row string
	for _, l := range lines {
		if strings.HasPrefix(l, "ID ") {
			header = l
		}
		if strings.Contains(l, g.backendURL(1)) && row == "" && strings.HasPrefix(l, "1 ") {
			row = l
		}
	}
	if header == "" || row == "" || !strings.Contains(text, "SHARD") || !strings.Contains(text, "ready") {
		t.Fatalf("text table lacks its header or a backend row:\n%s", text)
	}
	// Aligned: each column starts where its header does.
	for _, col := range []string{"BACKEND", "STATE", "IDLE", "LEASED"} {
		at := strings.Index(header, col)
		if at <= 0 || row[at-1] != ' ' || row[at] == ' ' {
			t.Errorf("column %s not aligned:\n%s\n%s", col, header, row)
		}
	}
	if code, _ := g.get("/pools?format=xml"); code != http.StatusBadRequest {
		t.Errorf("format=xml: %d, want 400", code)
	}
}

func TestReadyzTransitions(t *testing.T) {
	g := startGateway(t, gatewayOpts{poolSize: 2, lateBackend: true})
	if code, body := g.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d %s", code, body)
	}
	// Nothing dialed yet: the pool is empty.
	code, body := g.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no backend with idle connections") {
		t.Fatalf("readyz before the pool fills: %d %q, want 503 naming the empty pool", code, body)
	}
	g.startBackends()
	testutil.WaitFor(t, 10*time.Second, "ready once the pool fills", func() bool {
		code, _ := g.get("/readyz")
		return code == http.StatusOK
	})

	// Drain the only backend: its idle connections close, not ready.
	if code, body := g.post("/actions/drain?backend=0"); code != http.StatusOK {
		t.Fatalf("drain: %d %s", code, body)
	}
	code, body = g.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("readyz after drain: %d %q, want 503 naming the draining backend", code, body)
	}
	testutil.WaitFor(t, 10*time.Second, "drained backend's idle connections closed", func() bool {
		return g.pool.Backends()[0].Total.Load() == 0
	})
	if code, _ := g.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz while not ready: %d", code)
	}

	// Resume: the pool refills and the gateway is ready again.
	if code, body := g.post("/actions/resume?backend=0"); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	testutil.WaitFor(t, 10*time.Second, "ready after resume", func() bool {
		code, _ := g.get("/readyz")
		return code == http.StatusOK
	})

	// Shutting down: not ready, still alive.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	code, body = g.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("readyz after shutdown: %d %q", code, body)
	}
	if code, _ := g.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after shutdown: %d", code)
	}
}

// TestPauseResumeDrain checks the operator actions' effect on sessions:
// pause refuses new sessions on the backend (503 with no other backend)
// while open ones continue; resume takes them again; drain closes idle
// connections at once and leased ones as their sessions end.
func TestPauseResumeDrain(t *testing.T) {
	g := startGateway(t, gatewayOpts{poolSize: 2})
	g.waitFull()
	b := g.pool.Backends()[0]
	url := g.backendURL(0)

	open := g.dialWS("/open")
	echo(t, open, "before")

	// Pause by URL.
	code, body := g.post("/actions/pause?backend=" + url)
	if code != http.StatusOK || !strings.Contains(body, `"state": "paused"`) {
		t.Fatalf("pause: %d %s", code, body)
	}
	if st := dialStatus(t, g.wsURL("/new")); st != http.StatusServiceUnavailable {
		t.Fatalf("new session while the only backend is paused: HTTP %d, want 503", st)
	}
	echo(t, open, "while paused") // the open session continues
	if v := g.pools(); v.Backends[0].State != "paused" || v.Ready {
		t.Fatalf("pools while paused: state %s ready %v", v.Backends[0].State, v.Ready)
	}
	if idle := b.Idle.Load(); idle < 1 {
		t.Fatalf("pause closed idle connections (%d left); it must keep them", idle)
	}
	leases := b.Leases.Load()

	// Resume by ID.
	if code, body := g.post("/actions/resume?backend=0"); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	second := g.dialWS("/second")
	echo(t, second, "after resume")
	if got := b.Leases.Load(); got != leases+1 {
		t.Fatalf("leases after resume: %d, want %d", got, leases+1)
	}
	closeWith(t, second, websocket.CloseNormalClosure)

	// Drain: idle connections close now, the open session continues and
	// its connection closes when it ends.
	if code, body := g.post("/actions/drain?backend=" + strings.TrimSuffix(url, "/")); code != http.StatusOK {
		t.Fatalf("drain: %d %s", code, body)
	}
	testutil.WaitFor(t, 10*time.Second, "idle connections closed by drain", func() bool { return b.Idle.Load() == 0 })
	echo(t, open, "while draining")
	if l := b.Leased.Load(); l != 1 {
		t.Fatalf("leased while draining: %d, want the open session's 1", l)
	}
	if st := dialStatus(t, g.wsURL("/new")); st != http.StatusServiceUnavailable {
		t.Fatalf("new session while draining: HTTP %d, want 503", st)
	}
	closed := b.Closed.Load()
	closeWith(t, open, websocket.CloseNormalClosure)
	testutil.WaitFor(t, 10*time.Second, "drained connection closed as its session ended", func() bool {
		return b.Total.Load() == 0 && b.Closed.Load() > closed
	})
	if v := g.pools(); v.Backends[0].State != "draining" || !v.Backends[0].Drained {
		t.Fatalf("pools while draining: %+v", v.Backends[0])
	}

	// Unknown backend: 404 that says how to name one.
	code, body = g.post("/actions/pause?backend=ws://nowhere:1/")
	if code != http.StatusNotFound || !strings.Contains(body, "GET /pools") {
		t.Fatalf("unknown backend: %d %s", code, body)
	}
	if code, _ := g.get("/actions/pause?backend=0"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET on an action: %d, want 405", code)
	}
}

// TestPauseMovesSessionsToOtherBackend: with two backends, pausing one
// sends every new session to the other.
func TestPauseMovesSessionsToOtherBackend(t *testing.T) {
	g := startGateway(t, gatewayOpts{backends: 2, poolSize: 2})
	g.waitFull()
	if code, body := g.post("/actions/pause?backend=0"); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, body)
	}
	b0, b1 := g.pool.Backends()[0], g.pool.Backends()[1]
	before0, before1 := b0.Leases.Load(), b1.Leases.Load()
	for i := 0; i < 6; i++ {
		c := g.dialWS("/")
		echo(t, c, "m")
		closeWith(t, c, websocket.CloseNormalClosure)
	}
	if d0, d1 := b0.Leases.Load()-before0, b1.Leases.Load()-before1; d0 != 0 || d1 != 6 {
		t.Fatalf("leases while backend 0 is paused: %d and %d, want 0 and 6", d0, d1)
	}
	// Ready while the other backend serves (its pool refills after the
	// sessions, each of which closed its connection: poll).
	testutil.WaitFor(t, 10*time.Second, "ready with one of two backends paused", func() bool {
		code, _ := g.get("/readyz")
		return code == http.StatusOK
	})
}

func TestActionToken(t *testing.T) {
	var reloads atomic.Int32
	g := startGateway(t, gatewayOpts{poolSize: 1, token: "s3cret", configure: func(o *Options) {
		o.Reload = func(context.Context) error {
			if reloads.Add(1) == 2 {
				return errors.New("backend list is empty")
			}
			return nil
		}
	}})
	g.waitFull()
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", auth("nope"), http.StatusUnauthorized},
		{"longer token", auth("s3cret-and-more"), http.StatusUnauthorized},
		{"basic auth", []string{"Authorization", "Basic czNjcmV0"}, http.StatusUnauthorized},
		{"right token", auth("s3cret"), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := g.post("/actions/pause?backend=0", tc.header...)
			if code != tc.want {
				t.Fatalf("pause: %d %s, want %d", code, body, tc.want)
			}
			if code == http.StatusUnauthorized && !strings.Contains(body, "Bearer") {
				t.Errorf("401 body does not say what is needed: %q", body)
			}
		})
	}
	if !g.pool.Backends()[0].Paused() {
		t.Fatal("the authorized pause did not pause")
	}
	if code, _ := g.post("/actions/resume?backend=0"); code != http.StatusUnauthorized {
		t.Fatalf("resume without token: %d", code)
	}
	if code, _ := g.post("/actions/resume?backend=0", auth("s3cret")...); code != http.StatusOK || g.pool.Backends()[0].Paused() {
		t.Fatalf("resume with token: %d", code)
	}

	// GET views stay open on loopback.
	for _, path := range []string{"/pools", "/pools?format=text", "/stats", "/metrics", "/", "/healthz", "/readyz", "/debug/pprof/"} {
		if code, body := g.get(path); code != http.StatusOK {
			t.Errorf("GET %s without token from loopback: %d %.200s", path, code, body)
		}
	}

	// Reload: through the injected func, with its result.
	if code, body := g.post("/actions/reload", auth("s3cret")...); code != http.StatusOK || !strings.Contains(body, `"result": "ok"`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, body := g.post("/actions/reload", auth("s3cret")...); code != http.StatusUnprocessableEntity || !strings.Contains(body, "backend list is empty") {
		t.Fatalf("rejected reload: %d %s", code, body)
	}
	if code, _ := g.post("/actions/reload"); code != http.StatusUnauthorized {
		t.Fatalf("reload without token: %d", code)
	}

	// A cross-origin browser request is refused even with the token.
	code, body := g.post("/actions/drain?backend=0", append(auth("s3cret"), "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")...)
	if code != http.StatusForbidden || g.pool.Backends()[0].Drained() {
		t.Fatalf("cross-origin drain: %d %s", code, body)
	}
	// A Host that is not loopback (DNS rebinding) is refused.
	if code, _ := g.get("/pools", "Host", "rebound.example:80"); code != http.StatusMisdirectedRequest {
		t.Fatalf("GET with a non-loopback Host: %d, want 421", code)
	}
}

func TestReloadNotConfigured(t *testing.T) {
	g := startGateway(t, gatewayOpts{poolSize: 1})
	code, body := g.post("/actions/reload")
	if code != http.StatusNotImplemented || !strings.Contains(body, "reload is not available") {
		t.Fatalf("reload without a Reload func: %d %s, want 501 with a clear message", code, body)
	}
}

func TestListenRefusesPublicWithoutToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		_, err := Listen(addr, Options{})
		if !errors.Is(err, ErrPublicWithoutToken) || !strings.Contains(err.Error(), "-admin-token") {
			t.Errorf("Listen(%s) without token: %v, want a refusal naming -admin-token", addr, err)
		}
	}
	ep, err := Listen("0.0.0.0:0", Options{Token: "t"})
	if err != nil {
		t.Fatalf("Listen(0.0.0.0) with a token: %v", err)
	}
	_ = ep.Close()

	// Host-less addresses bind loopback.
	for _, addr := range []string{":0", "0"} {
		ep, err := Listen(addr, Options{})
		if err != nil {
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		if host, _, _ := strings.Cut(ep.Addr(), ":"); host != "127.0.0.1" {
			t.Errorf("Listen(%q) bound %s, want 127.0.0.1", addr, ep.Addr())
		}
		_ = ep.Close()
	}
	ep, err = Listen("localhost:0", Options{})
	if err != nil {
		t.Fatalf("Listen(localhost): %v", err)
	}
	_ = ep.Close()
}

func TestPprofEndpoints(t *testing.T) {
	g := startGateway(t, gatewayOpts{poolSize: 1})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol", "/debug/pprof/heap",
		"/debug/pprof/goroutine?debug=1", "/debug/pprof/mutex", "/debug/pprof/block", "/debug/pprof/profile?seconds=1",
		"/debug/pprof/trace?seconds=1"} {
		code, body := g.get(path)
		if code != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d (%d bytes)", path, code, len(body))
		}
	}
}

// dialStatus dials url and returns the HTTP status of a refused handshake
// (101 if it was accepted).
func dialStatus(t *testing.T, url string) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil {
		_ = c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return resp.StatusCode
}
