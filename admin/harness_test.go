package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap/zaptest"

	wsgateway "github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// gateway is a real gateway in-process, built from flags the way the
// binary builds it (gateway.ParseArgs, gateway.New): echo backends, the
// proxy server, its reconcile workers, and the admin endpoint in front.
type gateway struct {
	t        *testing.T
	gw       *wsgateway.Gateway
	srv      *server.Server
	pool     *pool.Pool
	backends []*server.Server
	admin    *Endpoint
	recorder *Recorder
	client   *http.Client

	lateAddrs []string // backends to start later (gatewayOpts.lateBackend)
}

type gatewayOpts struct {
	backends    int            // echo backends (default 1)
	poolSize    int            // -pool-size per backend (default 4)
	policy      string         // -release-policy ("": the binary's default)
	token       string         // admin token
	lateBackend bool           // the backends start only when startBackends is called (the pool stays empty until then)
	access      *AccessLog     // access log fed by the session-end hook
	configure   func(*Options) // last word on the admin options
	args        []string       // more gateway flags
}

func startGateway(t *testing.T, o gatewayOpts) *gateway {
	t.Helper()
	if o.backends == 0 {
		o.backends = 1
	}
	if o.poolSize == 0 {
		o.poolSize = 4
	}
	log := zaptest.NewLogger(t)
	g := &gateway{t: t, client: &http.Client{Timeout: 10 * time.Second}}
	args := []string{"-listen", "127.0.0.1:0", "-loops", "2", "-pool-size", strconv.Itoa(o.poolSize), "-acquire-timeout", "1s"}
	if o.policy != "" {
		args = append(args, "-release-policy", o.policy)
	}
	var addrs []string
	for i := 0; i < o.backends; i++ {
		addr := "127.0.0.1:0"
		if o.lateBackend {
			addr = freeAddr(t) // nothing listens there until startBackends
		} else {
			addr = startEcho(t, g, addr)
		}
		addrs = append(addrs, addr)
		args = append(args, "-backend", "ws://"+addr+"/")
	}
	args = append(args, o.args...)
	opts, warnings, err := wsgateway.ParseArgs(args)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("flags %q: %v %v", args, err, warnings)
	}
	opts.Server.TickInterval = 10 * time.Millisecond
	opts.ReconcileInterval = 200 * time.Millisecond
	opts.Logger = log
	gw, err := wsgateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.recorder = NewRecorder()
	gw.SetSessionEnd(Hook(g.recorder, o.access))
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	g.gw, g.srv, g.pool = gw, gw.Server, gw.Pool
	ao := Options{Server: g.srv, Pool: g.pool, ListenerTLS: gw.ListenerTLS(), Recorder: g.recorder, AccessLog: o.access, Logger: log.Named("admin"), Token: o.token}
	if o.configure != nil {
		o.configure(&ao)
	}
	ep, err := Listen("127.0.0.1:0", ao)
	if err != nil {
		t.Fatal(err)
	}
	g.admin = ep
	t.Cleanup(g.stop)
	if o.lateBackend {
		g.lateAddrs = addrs
	}
	return g
}

// startEcho starts an echo backend on addr and returns its address.
func startEcho(t *testing.T, g *gateway, addr string) string {
	t.Helper()
	b, err := server.New(server.Config{Addr: addr, Loops: 1, Handler: server.Echo{}, Logger: zaptest.NewLogger(t).Named("backend")})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	g.backends = append(g.backends, b)
	return b.Addr()
}

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startBackends starts the backends of a gateway built with lateBackend.
func (g *gateway) startBackends() {
	g.t.Helper()
	for _, addr := range g.lateAddrs {
		startEcho(g.t, g, addr)
	}
}

func (g *gateway) stop() {
	_ = g.admin.Close()
	g.gw.Stop()
	for _, b := range g.backends {
		b.Stop()
	}
}

func (g *gateway) wsURL(path string) string { return "ws://" + g.srv.Addr() + path }

func (g *gateway) adminURL(path string) string { return "http://" + g.admin.Addr() + path }

func (g *gateway) backendURL(i int) string { return g.pool.Backends()[i].Settings().URL }

// waitFull waits until every backend has its target idle in the pool.
func (g *gateway) waitFull() {
	g.t.Helper()
	testutil.WaitFor(g.t, 10*time.Second, "pool full", func() bool {
		for _, b := range g.pool.Backends() {
			if b.Idle.Load() < int64(b.Settings().Target) {
				return false
			}
		}
		return true
	})
}

// get fetches an admin path and returns status and body.
func (g *gateway) get(path string, header ...string) (int, string) {
	g.t.Helper()
	return g.do(http.MethodGet, path, header...)
}

func (g *gateway) post(path string, header ...string) (int, string) {
	g.t.Helper()
	return g.do(http.MethodPost, path, header...)
}

func (g *gateway) do(method, path string, header ...string) (int, string) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.adminURL(path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func (g *gateway) getJSON(path string, v any) {
	g.t.Helper()
	code, body := g.get(path)
	if code != http.StatusOK {
		g.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		g.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (g *gateway) pools() PoolsView {
	var v PoolsView
	g.getJSON("/pools", &v)
	return v
}

// scrape reads /metrics into metric families.
func (g *gateway) scrape() metrics {
	g.t.Helper()
	code, body := g.get("/metrics")
	if code != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		g.t.Fatalf("parse /metrics: %v", err)
	}
	return metrics(fams)
}

// metrics is a parsed scrape.
type metrics map[string]*dto.MetricFamily

// value returns the sample of name whose labels include labels (pairs),
// and whether there is one.
func (m metrics) value(name string, labels ...string) (float64, bool) {
	f, ok := m[name]
	if !ok {
		return 0, false
	}
next:
	for _, s := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// dialWS opens a client session through the gateway.
func (g *gateway) dialWS(path string) *websocket.Conn {
	g.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(g.wsURL(path), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		g.t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

// echo sends msg and reads the echo back.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// closeWith sends a close frame with code and waits for the server's reply.
func closeWith(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, "")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != code {
				t.Fatalf("close: got %v, want the server to echo %d", err, code)
			}
			break
		}
	}
	_ = c.Close()
}
