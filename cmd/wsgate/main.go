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
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/buildinfo"
	"github.com/wsgate/wsgate/internal/logsink"
	"github.com/wsgate/wsgate/internal/sdnotify"
	"github.com/wsgate/wsgate/server"
)

func main() {
	// A SIGHUP must never end the process: before the configuration
	// watcher is up, after it stops, or in echo mode. This registration
	// lasts for the process's life; the watcher adds its own.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go swallowSignals(hup)
	tuneGC()
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
		case "check":
			return runCheck(args[1:], stdio.out, stdio.err)
		case "-version", "--version", "version":
			fmt.Println(buildinfo.Get())
			return 0
		}
	}
	return runGateway(args)
}

func runEcho(args []string) int {
	fs := flag.NewFlagSet("wsgate echo", flag.ContinueOnError)
	var f gateway.EndpointFlags
	f.Register(fs)
	fs.Usage = usage(fs, "wsgate echo [flags]: echo every message back (a backend for tests, demos and the loadtest)")
	log, _, flush, code := parseFlags(fs, args, &f)
	if log == nil {
		return code
	}
	defer flush()
	cfg, certs, err := f.ServerConfig()
	if err != nil {
		log.Error("bad flags", zap.Error(err))
		return 2
	}
	cfg.Logger = log
	cfg.Handler = server.Echo{}
	srv, code := startServer(cfg, log)
	if code != 0 {
		return code
	}
	if certs != nil {
		// Certificates reload on SIGHUP and when their files change.
		ctx, stopWatch := context.WithCancel(context.Background())
		var watching sync.WaitGroup
		hup := watchSIGHUP(func() bool { _ = certs.ReloadAndLog(log, "SIGHUP"); return true }, log)
		watching.Add(2)
		go hup.run(ctx, &watching)
		go func() { defer watching.Done(); certs.Watch(ctx, 0, log) }()
		defer func() { stopWatch(); watching.Wait() }()
	}
	log.Info("echo backend ready", zap.String("addr", srv.Addr()), zap.String("tls_addr", srv.TLSAddr()))
	if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		log.Warn("could not tell systemd the echo backend is ready", zap.Error(err))
	}
	return waitForSignal(log, srv.Done(), srv.Err, func(ctx context.Context) error { return srv.Shutdown(ctx) }, f.ShutdownTimeout)
}

// parseFlags parses a mode's flags (refusing stray arguments) and builds
// the logger they describe, with its sink (whose Dropped counts the lines
// stderr did not take in time). Without a logger there is nothing to run:
// code is the exit status (0 after -h).
func parseFlags(fs *flag.FlagSet, args []string, f *gateway.EndpointFlags) (*zap.Logger, *logsink.Sink, func(), int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, 0 // asked for help: printed, nothing to run
		}
		return nil, nil, nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "wsgate: unexpected argument %q (modes: wsgate [flags], wsgate echo, wsgate check, wsgate migrate; -h lists them)\n", fs.Arg(0))
		return nil, nil, nil, 2
	}
	log, sink, flush, err := newLogger(f.LogFormat, f.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate:", err)
		return nil, nil, nil, 2
	}
	return log, sink, flush, 0
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
// deadline; a second signal exits at once. If the server fails by itself
// first (done closes with err() set), it exits 1 at once: a supervisor
// restarts a process that lost its event loops.
func waitForSignal(log *zap.Logger, done <-chan struct{}, err func() error, shutdown func(context.Context) error, timeout time.Duration) int {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	var got os.Signal
	select {
	case got = <-sig:
	case <-done:
		log.Error("the server stopped by itself; exiting", zap.Error(err()))
		return 1
	}
	log.Info("shutting down", zap.Stringer("signal", got), zap.Duration("timeout", timeout))
	if _, err := sdnotify.Notify(sdnotify.Stopping); err != nil {
		log.Warn("could not tell systemd the gateway is stopping", zap.Error(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- shutdown(ctx) }()
	select {
	case err := <-result:
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
	v, err := config.Migrate(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate migrate:", err)
		return 1
	}
	fmt.Printf("wsgate migrate: schema at version %d\n", v)
	return 0
}
