package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/buildinfo"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// ReloadOK is ConfigStatus.LastReload after a successful load.
const ReloadOK = "ok"

// ErrReloadPending is what Options.Reload returns when the source took the
// request but has not reported a result in time (answered 202).
var ErrReloadPending = errors.New("admin: reload requested; the configuration source has not reported a result yet (GET /pools shows the version in force)")

// ConfigStatus is what the configuration source reports: the version in
// use and how the last reload went.
type ConfigStatus struct {
	Version      uint64    `json:"version"`                 // 0: no configuration loaded yet
	Source       string    `json:"source,omitempty"`        // where the version in force came from (flags, file:PATH, postgres)
	LastReload   string    `json:"last_reload"`             // ReloadOK, or why the last one was rejected
	LastReloadAt time.Time `json:"last_reload_at,omitzero"` // zero: never reloaded
}

// Options is what the admin endpoint shows and steers. Server and Pool
// may be nil (that part of the views is then empty).
type Options struct {
	Server      *server.Server
	Pool        *pool.Pool
	ListenerTLS *tlsconf.Server   // the TLS listener's certificates (optional): reloads and expiry
	Proxy       *relay.Proxy      // the relay (optional): upgrades refused for their token
	JWT         *jwtauth.Verifier // the token key (optional): its reloads
	Recorder    *Recorder         // session-end counters for /metrics and /stats (optional)
	AccessLog   *AccessLog        // its counters appear in /stats (optional)
	Logger      *zap.Logger

	// Token, if set, is required as "Authorization: Bearer TOKEN" by the
	// operator actions, and by every view but /healthz and /readyz when
	// the client is not on loopback. Without it the endpoint only binds
	// to loopback.
	Token string
	// ConfigStatus reports the configuration version and the last reload
	// result; nil reports version 1, "ok" (a configuration from flags).
	ConfigStatus func() ConfigStatus
	// Reload reloads the configuration now (POST /actions/reload) and
	// returns the result: nil, the rejection, or ErrReloadPending when the
	// source took the request but has not reported yet. nil answers 501:
	// there is nothing to reload.
	Reload func(context.Context) error
	// LogDropped, if set, counts the process's log lines dropped because
	// its output did not take them in time (wsgate_log_lines_dropped_total).
	LogDropped func() int64
	// MutexProfileFraction and BlockProfileRate, when positive, turn on
	// the runtime's mutex and block profiling (runtime.SetMutexProfileFraction,
	// runtime.SetBlockProfileRate) when the endpoint starts; they are
	// process-wide and cost CPU, so they are off by default.
	MutexProfileFraction int
	BlockProfileRate     int
}

// Admin is the admin endpoint's handler. Safe for concurrent use.
type Admin struct {
	o        Options
	log      *zap.Logger
	started  time.Time
	listen   string // the gateway's listen address, for the views
	loopback bool   // serving on loopback only: Host headers must name loopback (DNS rebinding)
	tokenSum [sha256.Size]byte
	registry *prometheus.Registry
	mux      *http.ServeMux
}

// New builds the admin handler.
func New(o Options) *Admin {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	a := &Admin{o: o, log: o.Logger, started: time.Now(), registry: prometheus.NewRegistry()}
	if o.Token != "" {
		a.tokenSum = sha256.Sum256([]byte(o.Token))
	}
	if o.Server != nil {
		a.listen = o.Server.Addr()
	}
	a.registry.MustRegister(
		newServerCollector(a), newPoolCollector(a), newConfigCollector(a),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.Recorder != nil {
		a.registry.MustRegister(o.Recorder)
	}
	a.routes()
	return a
}

func (a *Admin) routes() {
	m := http.NewServeMux()
	view := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, a.guard(false, h)) }
	open := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, a.hostCheck(h)) }

	open("GET /healthz", a.healthz)
	open("GET /readyz", a.readyz)
	view("GET /{$}", a.statusPage)
	view("GET /pools", a.poolsHandler)
	view("GET /stats", a.statsHandler)
	m.Handle("GET /metrics", a.guard(false, promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(a.log), Registry: a.registry,
	})))
	view("/debug/pprof/", pprof.Index)
	view("/debug/pprof/cmdline", pprof.Cmdline)
	view("/debug/pprof/profile", pprof.Profile)
	view("/debug/pprof/symbol", pprof.Symbol)
	view("/debug/pprof/trace", pprof.Trace)

	cop := http.NewCrossOriginProtection()
	action := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, a.guard(true, cop.Handler(h))) }
	action("POST /actions/pause", a.backendAction("pause", (*pool.Backend).Pause))
	action("POST /actions/resume", a.backendAction("resume", (*pool.Backend).Resume))
	action("POST /actions/drain", a.backendAction("drain", (*pool.Backend).Drain))
	action("POST /actions/reload", a.reload)
	a.mux = m
}

// ServeHTTP is the whole endpoint.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// hostCheck refuses requests whose Host header does not name a loopback
// address while the endpoint serves on loopback only: a web page the
// operator visits cannot reach it through a DNS name rebound to 127.0.0.1.
func (a *Admin) hostCheck(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.loopback && !loopbackHost(r.Host) {
			http.Error(w, "admin: Host must be a loopback address (127.0.0.1, [::1] or localhost)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guard checks who may see a view or run an action: actions need the
// token when one is set; views need it from non-loopback clients.
func (a *Admin) guard(action bool, h http.Handler) http.Handler {
	return a.hostCheck(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := a.o.Token != "" && (action || !loopbackClient(r.RemoteAddr))
		if need && !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate-admin"`)
			msg := "admin: this action needs Authorization: Bearer <the -admin-token value>"
			if !action {
				msg = "admin: clients off loopback need Authorization: Bearer <the -admin-token value>"
			}
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func loopbackClient(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorized compares the bearer token in constant time (hashes first, so
// the time does not depend on the length either).
func (a *Admin) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func (a *Admin) configStatus() ConfigStatus {
	if a.o.ConfigStatus == nil {
		return ConfigStatus{Version: 1, LastReload: ReloadOK}
	}
	return a.o.ConfigStatus()
}

// healthz is liveness: 200 while the server can serve, 503 once it has
// failed (its event engine stopped by itself, its acceptor died), so a
// supervisor restarts a process that would otherwise linger without its
// loops.
func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if srv := a.o.Server; srv != nil && srv.Err() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "failed:", srv.Err())
		return
	}
	_, _ = fmt.Fprintln(w, "ok", buildinfo.Get())
}

// ready reports whether the gateway should get traffic: listening (and not
// shutting down), a configuration loaded, and at least one backend that
// takes leases with an idle connection ready. reason says what is missing.
func (a *Admin) ready() (bool, string) {
	if a.o.Server == nil {
		return false, "not listening: no server"
	}
	if a.o.Server.ShuttingDown() {
		return false, "shutting down: new sessions are refused"
	}
	if st := a.configStatus(); st.Version == 0 {
		return false, "no configuration loaded"
	}
	if a.o.Pool == nil {
		return true, ""
	}
	backends := a.o.Pool.Backends()
	if len(backends) == 0 {
		return false, "no backend configured"
	}
	for _, b := range backends {
		if b.TakesLeases() && b.Idle.Load() > 0 {
			return true, ""
		}
	}
	var why []string
	for _, b := range backends {
		if b.Removed() {
			continue
		}
		s := fmt.Sprintf("%s: %s, %d idle", b.Settings().URL, backendState(b), b.Idle.Load())
		if !b.Healthy() {
			s += ", unhealthy"
			if e := b.LastError(); e != "" {
				s += " (" + e + ")"
			}
		}
		why = append(why, s)
	}
	return false, "no backend with idle connections: " + strings.Join(why, "; ")
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ok, why := a.ready()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "not ready:", why)
		return
	}
	_, _ = fmt.Fprintln(w, "ready")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (a *Admin) poolsHandler(w http.ResponseWriter, r *http.Request) {
	v := a.pools()
	switch r.URL.Query().Get("format") {
	case "", "json":
		writeJSON(w, http.StatusOK, v)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = writePoolsText(w, v)
	default:
		http.Error(w, "admin: format is json or text", http.StatusBadRequest)
	}
}

func (a *Admin) statsHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.stats())
}

// findBackend finds a backend by ID or by URL.
func (a *Admin) findBackend(key string) (*pool.Backend, error) {
	if a.o.Pool == nil {
		return nil, errors.New("admin: this process has no backend pool")
	}
	if key == "" {
		return nil, errors.New("admin: say which backend: ?backend=ID or ?backend=URL")
	}
	backends := a.o.Pool.Backends()
	for _, b := range backends {
		if u := b.Settings().URL; u == key || strings.TrimSuffix(u, "/") == strings.TrimSuffix(key, "/") {
			return b, nil
		}
	}
	for _, b := range backends {
		if fmt.Sprint(b.ID) == key {
			return b, nil
		}
	}
	return nil, fmt.Errorf("admin: no backend %q (give its id or its URL; GET /pools lists them)", key)
}

// ActionResult is the answer to an operator action.
type ActionResult struct {
	Action  string        `json:"action"`
	Result  string        `json:"result"` // "ok", or the error
	Backend *BackendView  `json:"backend,omitempty"`
	Config  *ConfigStatus `json:"config,omitempty"`
}

// backendAction runs fn on the backend named by the "backend" query or
// form value, then wakes every shard's reconcile worker so idle
// connections close (drain) or refill (resume) now rather than at the
// next tick.
func (a *Admin) backendAction(name string, fn func(*pool.Backend)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := a.findBackend(r.FormValue("backend"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, ActionResult{Action: name, Result: err.Error()})
			return
		}
		fn(b)
		for _, sh := range a.o.Pool.Shards() {
			sh.Signal()
		}
		a.log.Info("admin action", zap.String("action", name), zap.String("backend", b.Settings().URL),
			zap.String("from", r.RemoteAddr))
		v := viewBackend(b, len(a.o.Pool.Shards()), time.Now())
		writeJSON(w, http.StatusOK, ActionResult{Action: name, Result: "ok", Backend: &v})
	}
}

func (a *Admin) reload(w http.ResponseWriter, r *http.Request) {
	if a.o.Reload == nil {
		writeJSON(w, http.StatusNotImplemented, ActionResult{Action: "reload",
			Result: "admin: reload is not available: this gateway was configured from flags and has no configuration source to reload"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err := a.o.Reload(ctx)
	st := a.configStatus()
	if errors.Is(err, ErrReloadPending) {
		a.log.Info("admin reload requested", zap.String("from", r.RemoteAddr))
		writeJSON(w, http.StatusAccepted, ActionResult{Action: "reload", Result: err.Error(), Config: &st})
		return
	}
	if err != nil {
		a.log.Warn("admin reload rejected", zap.Error(err), zap.String("from", r.RemoteAddr))
		writeJSON(w, http.StatusUnprocessableEntity, ActionResult{Action: "reload", Result: err.Error(), Config: &st})
		return
	}
	a.log.Info("admin reload", zap.Uint64("version", st.Version), zap.String("from", r.RemoteAddr))
	writeJSON(w, http.StatusOK, ActionResult{Action: "reload", Result: ReloadOK, Config: &st})
}

// Endpoint is a running admin endpoint.
type Endpoint struct {
	*Admin
	ln net.Listener
	hs *http.Server
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// Close stops serving at once.
func (e *Endpoint) Close() error { return e.hs.Close() }

// ErrPublicWithoutToken refuses a non-loopback admin address without a token.
var ErrPublicWithoutToken = errors.New("admin: refusing to serve on a non-loopback address without a token")

// Listen serves the admin endpoint on addr. A host-less addr (":8081")
// binds loopback (127.0.0.1). Any other non-loopback address is refused
// unless o.Token is set: whoever reaches the endpoint can pause and drain
// backends and read profiles.
func Listen(addr string, o Options) (*Endpoint, error) {
	addr, err := loopbackDefault(addr)
	if err != nil {
		return nil, err
	}
	if o.Token == "" {
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
	}
	ta, _ := ln.Addr().(*net.TCPAddr)
	isLoopback := ta != nil && ta.IP.IsLoopback()
	if !isLoopback && o.Token == "" { // a name that resolved elsewhere than checked
		_ = ln.Close()
		return nil, fmt.Errorf("%w: %s is not loopback; set -admin-token (then actions and off-loopback views need it) or bind 127.0.0.1", ErrPublicWithoutToken, ln.Addr())
	}
	if o.MutexProfileFraction > 0 {
		runtime.SetMutexProfileFraction(o.MutexProfileFraction)
	}
	if o.BlockProfileRate > 0 {
		runtime.SetBlockProfileRate(o.BlockProfileRate)
	}
	a := New(o)
	a.loopback = isLoopback
	e := &Endpoint{Admin: a, ln: ln, hs: &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(a.log),
	}}
	go e.serve()
	a.log.Info("admin endpoint", zap.String("addr", e.Addr()), zap.Bool("token", o.Token != ""))
	return e, nil
}

// serve is the endpoint's one goroutine; Close ends it.
func (e *Endpoint) serve() {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("admin endpoint panicked", zap.Any("panic", r))
		}
	}()
	if err := e.hs.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.log.Warn("admin endpoint stopped", zap.Error(err))
	}
}

// loopbackDefault gives a host-less address the loopback host.
func loopbackDefault(addr string) (string, error) {
	if !strings.Contains(addr, ":") { // a bare port
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin: address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// checkLoopback refuses an address whose host is not loopback, before
// anything binds it. Names must resolve to loopback addresses only.
func checkLoopback(addr string) error {
	host, _, _ := net.SplitHostPort(addr)
	refuse := func() error {
		return fmt.Errorf("%w: %s is not loopback; set -admin-token (then actions and off-loopback views need it) or bind 127.0.0.1", ErrPublicWithoutToken, addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return refuse()
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("admin: address %q: %w", addr, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return refuse()
		}
	}
	return nil
}
