// Command wsgate is the WebSocket gateway:
//
//	wsgate -listen 127.0.0.1:8080 -backend ws://127.0.0.1:9001/ -backend ws://127.0.0.1:9002/ -pool-size 100
//
// `wsgate echo -listen ADDR` runs the same endpoint as an echo backend for
// tests, demos and the loadtest. `wsgate -h` lists every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/logsink"
	"github.com/wsgate/wsgate/reconcile"
	"github.com/wsgate/wsgate/server"
)

func main() {
	// A SIGHUP must never end the process: before the configuration
	// watcher is up, after it stops, or in echo mode. This registration
	// lasts for the process's life; the watcher adds its own.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go swallowSignals(hup)
	os.Exit(run(os.Args[1:]))
}

// swallowSignals drains c forever.
func swallowSignals(c <-chan os.Signal) {
	for range c {
	}
}

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "echo":
			return runEcho(args[1:])
		case "migrate":
			return runMigrate(args[1:])
		}
	}
	return runGateway(args)
}

// endpointFlags are the flags every mode shares: listener, limits, timers, logs.
type endpointFlags struct {
	cfg             server.Config
	subprotocols    stringList
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration

	// logSink is the process logger's sink, set by parseFlags. Its
	// Dropped counts the log lines stderr did not take in time.
	logSink *logsink.Sink
}

func (f *endpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfg.Addr, "listen", "127.0.0.1:8080", "listen address host:port")
	fs.IntVar(&f.cfg.Loops, "loops", 0, "event loops (shards); 0 = GOMAXPROCS")
	fs.IntVar(&f.cfg.MaxConns, "max-conns", 0, "max client connections before 503; 0 = from the open-file limit")
	fs.IntVar(&f.cfg.MaxHeaderBytes, "max-header-bytes", 0, "max upgrade request header bytes before 431 (default 8 KiB)")
	fs.Int64Var(&f.cfg.MaxFrameBytes, "max-frame-bytes", 0, "max frame payload before 1009 (default max-message-bytes)")
	fs.Int64Var(&f.cfg.MaxMessageBytes, "max-message-bytes", 0, "max message size before 1009 (default 1 MiB)")
	fs.IntVar(&f.cfg.WriteBufferLimit, "write-buffer-limit", 0, "bytes queued to a slow client before close 1008 (default 4 MiB)")
	fs.DurationVar(&f.cfg.HandshakeTimeout, "handshake-timeout", 0, "time to receive the upgrade request (default 10s)")
	fs.DurationVar(&f.cfg.PingInterval, "ping-interval", 0, "ping a client silent this long (default 30s)")
	fs.DurationVar(&f.cfg.PongTimeout, "pong-timeout", 0, "close a pinged client silent this long (default 10s)")
	fs.DurationVar(&f.cfg.CloseTimeout, "close-timeout", 0, "wait this long for a close reply (default 5s)")
	fs.Var(&f.subprotocols, "subprotocol", "subprotocol to accept, in preference order (repeatable)")
	fs.StringVar(&f.logFormat, "log-format", "console", "log format: console or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, time for sessions to close before exit")
}

func runEcho(args []string) int {
	fs := flag.NewFlagSet("wsgate echo", flag.ContinueOnError)
	var f endpointFlags
	f.register(fs)
	log, flush, code := parseFlags(fs, args, &f)
	if code != 0 {
		return code
	}
	defer flush()
	f.cfg.Subprotocols = f.subprotocols
	f.cfg.Logger = log
	f.cfg.Handler = server.Echo{}
	srv, code := startServer(f.cfg, log)
	if code != 0 {
		return code
	}
	log.Info("echo backend ready", zap.String("addr", srv.Addr()))
	return waitForSignal(log, func(ctx context.Context) error { return srv.Shutdown(ctx) }, f.shutdownTimeout)
}

// parseFlags parses a mode's flags (refusing stray arguments) and builds
// the logger they describe, leaving its sink in f.logSink. A non-zero code
// is the exit status.
func parseFlags(fs *flag.FlagSet, args []string, f *endpointFlags) (*zap.Logger, func(), int) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "wsgate: unexpected argument %q (modes: wsgate [flags], wsgate echo [flags], wsgate migrate [flags])\n", fs.Arg(0))
		return nil, nil, 2
	}
	log, sink, flush, err := newLogger(f.logFormat, f.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate:", err)
		return nil, nil, 2
	}
	f.logSink = sink
	return log, flush, 0
}

// startServer creates and starts the endpoint; a non-zero code is the
// exit status (2: bad configuration, 1: could not start).
func startServer(cfg server.Config, log *zap.Logger) (*server.Server, int) {
	srv, err := server.New(cfg)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return nil, 2
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		return nil, 1
	}
	return srv, 0
}

// waitForSignal blocks until SIGTERM or SIGINT, then runs shutdown with a
// deadline. A second signal exits at once.
func waitForSignal(log *zap.Logger, shutdown func(context.Context) error, timeout time.Duration) int {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	got := <-sig
	log.Info("shutting down", zap.Stringer("signal", got), zap.Duration("timeout", timeout))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("shutdown", zap.Error(err))
			return 1
		}
		return 0
	case <-sig:
		log.Warn("second signal: exiting now")
		return 1
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runMigrate creates or updates the configuration schema in PostgreSQL.
func runMigrate(args []string) int {
	fs := flag.NewFlagSet("wsgate migrate", flag.ContinueOnError)
	url := fs.String("config-db", "", "PostgreSQL URL, e.g. postgres://user:pass@127.0.0.1:5432/wsgate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" {
		fmt.Fprintln(os.Stderr, "usage: wsgate migrate -config-db postgres://...")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := reconcile.Migrate(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate migrate:", err)
		return 1
	}
	fmt.Printf("wsgate migrate: schema at version %d\n", v)
	return 0
}
