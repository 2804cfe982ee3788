package goroutineproxy

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wsgate/wsgate/internal/flagvalue"
)

// Main runs the proxy as a command (`loadtest goroutine-proxy`) until
// SIGTERM or SIGINT, and returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("goroutine-proxy", flag.ContinueOnError)
	var cfg Config
	var backends flagvalue.StringList
	var admin, logLevel string
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8081", "client listen address host:port")
	fs.Var(&backends, "backend", "backend WebSocket URL (repeatable)")
	fs.IntVar(&cfg.PoolSize, "pool-size", 64, "connections per backend")
	fs.StringVar(&admin, "admin", "", "admin listen address serving /debug/pprof/ and /pools (empty: none)")
	fs.DurationVar(&cfg.AcquireTimeout, "acquire-timeout", 0, "wait for an idle backend connection before 503 (default 5s)")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 0, "backend connect + handshake timeout (default 5s)")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 0, "ping a backend connection quiet this long (default 10s)")
	fs.DurationVar(&cfg.PongTimeout, "pong-timeout", 0, "backend pong timeout (default 5s)")
	fs.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", 0, "safety-net reconcile period, ±10% (default 5s)")
	fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Backends = backends
	var level zapcore.Level
	if err := level.Set(logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "goroutine-proxy:", err)
		return 2
	}
	zcfg := zap.NewProductionConfig()
	zcfg.Level = zap.NewAtomicLevelAt(level)
	log, err := zcfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "goroutine-proxy:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log

	p, err := New(cfg)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	if err := p.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	if admin != "" {
		if err := serveAdmin(admin, p, log); err != nil {
			log.Error("admin endpoint", zap.Error(err))
			_ = p.Close()
			return 1
		}
	}
	log.Info("goroutine proxy ready", zap.String("addr", p.Addr()), zap.Strings("backends", cfg.Backends),
		zap.Int("pool_size", cfg.PoolSize))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
		return 0
	case <-time.After(10 * time.Second):
		log.Warn("shutdown timed out")
		return 1
	}
}

// serveAdmin serves pprof and the pool counters on addr in the background.
func serveAdmin(addr string, p *Proxy, log *zap.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/pools", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Stats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin serve", zap.Error(err))
		}
	}()
	return nil
}
