package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/loadtest/goroutineproxy"
	"github.com/wsgate/wsgate/server"
)

// childEnv makes the test binary act as one of the run's processes: an echo
// backend (the server package's Echo, what `wsgate echo` runs), the
// gateway (package gateway from the same flags, what `wsgate` runs) or the
// goroutine proxy. The end-to-end test thus starts, measures and stops real
// processes without building any binary.
const childEnv = "LOADTEST_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "echo":
		os.Exit(runTestEcho(os.Args[1], 0))
	case "echo-big":
		max, _ := strconv.ParseInt(os.Args[2], 10, 64)
		os.Exit(runTestEcho(os.Args[1], max))
	case "goroutine-proxy":
		os.Exit(goroutineproxy.Main(os.Args[1:]))
	case "wsgate":
		os.Exit(runTestGateway(os.Args[1:]))
	}
	// The run's goroutines (generator, samplers, process watchers) all end
	// with it. gnet's shared worker pool is not ours.
	goleak.VerifyTestMain(m, testutil.IgnoreGnetWorkers()...)
}

func runTestEcho(addr string, maxMessage int64) int {
	srv, err := server.New(server.Config{Addr: addr, Handler: server.Echo{}, MaxMessageBytes: maxMessage})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	return runUntilSignal(srv.Shutdown)
}

// runUntilSignal waits for SIGTERM or SIGINT, then shuts down within 2 s.
func runUntilSignal(shutdown func(context.Context) error) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = shutdown(ctx)
	return 0
}

// runTestGateway runs the gateway from the flags the run gives wsgate,
// less the binary's own (-admin, -log-level), until SIGTERM.
func runTestGateway(args []string) int {
	var gatewayArgs []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-admin" || args[i] == "-log-level" {
			i++ // and its value
			continue
		}
		gatewayArgs = append(gatewayArgs, args[i])
	}
	opts, _, err := gateway.ParseArgs(gatewayArgs)
	var gw *gateway.Gateway
	if err == nil {
		gw, err = gateway.New(opts)
	}
	if err == nil {
		err = gw.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	return runUntilSignal(gw.Shutdown)
}

// testChild is the test binary started as role (see childEnv).
func testChild(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	return cmd
}

func testCommands() Commands {
	child := testChild
	return Commands{
		Backend:        func(addr string) *exec.Cmd { return child("echo", addr) },
		GoroutineProxy: func(args []string) *exec.Cmd { return child("goroutine-proxy", args...) },
		Wsgate:         func(args []string) *exec.Cmd { return child("wsgate", args...) },
	}
}

// TestEndToEndTinyScenario runs a tiny scenario through the whole tool:
// processes, load, measurement, report, chart and JSON. It asserts that
// everything was measured and nothing was lost, never how fast it was.
func TestEndToEndTinyScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	sc := Scenarios["seed-table-scaled"]
	sc.Name = "tiny"
	sc.Backends, sc.Conns, sc.Rate = 2, 20, 20
	sc.Warmup, sc.Duration = 500*time.Millisecond, 1500*time.Millisecond
	sc.Settle, sc.ConnectWait = 3*time.Second, 20*time.Second

	var progress strings.Builder
	results := Run(Options{
		Scenario: sc, Kinds: []string{KindDirect, KindGoroutine},
		Commands: testCommands(), LogDir: t.TempDir(), Progress: &progress,
	})
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if r.Failed != "" {
				t.Fatalf("run failed: %s\nprogress:\n%s", r.Failed, progress.String())
			}
			if n := r.Errors.Total(); n != 0 {
				t.Fatalf("%d errors: %+v", n, r.Errors)
			}
			if r.Sessions.Opened != 20 || r.Sessions.OpenAtEnd != 20 {
				t.Errorf("sessions opened %d, open at end %d, want 20", r.Sessions.Opened, r.Sessions.OpenAtEnd)
			}
			if r.Traffic.Received == 0 || r.Traffic.Latency.Count != r.Traffic.Received {
				t.Errorf("received %d, latency samples %d", r.Traffic.Received, r.Traffic.Latency.Count)
			}
			if r.Traffic.Sent < r.Traffic.Received-20 {
				t.Errorf("sent %d < received %d", r.Traffic.Sent, r.Traffic.Received)
			}
			if len(r.Series) == 0 {
				t.Error("no per-second series")
			}
			if !r.Backends.Measured || r.Backends.Procs != 2 {
				t.Errorf("backends not measured: %+v", r.Backends)
			}
			switch r.Name {
			case KindDirect:
				if r.Proxy.Measured {
					t.Error("direct has no proxy to measure")
				}
			case KindGoroutine:
				if !r.Proxy.Measured || r.Proxy.RSSPeak == 0 || r.Proxy.RSSAvg == 0 || r.Proxy.Baseline == 0 {
					t.Errorf("proxy not measured: %+v", r.Proxy)
				}
			}
		})
	}
	var table strings.Builder
	WriteTable(&table, results)
	if !strings.Contains(table.String(), "| metric | direct | goroutine |") {
		t.Errorf("table:\n%s", table.String())
	}
	if _, err := json.Marshal(Report{Results: results}); err != nil {
		t.Errorf("JSON: %v", err)
	}
	if !strings.Contains(progress.String(), "tiny/goroutine") {
		t.Errorf("no live line for the goroutine run:\n%s", progress.String())
	}
}

// TestEndToEndIdleSessions runs the density shape in miniature: one echo
// per session, then idle; and nginx too when it is installed.
func TestEndToEndIdleSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	sc := Scenarios["density"]
	sc.Name = "tiny-density"
	sc.Backends, sc.Conns = 2, 30
	sc.Warmup, sc.Duration = 200*time.Millisecond, time.Second
	sc.Settle, sc.ConnectWait = 3*time.Second, 20*time.Second
	kinds := []string{KindGoroutine}
	if _, err := findNginx(""); err == nil {
		kinds = append(kinds, KindNginx)
	}
	results := Run(Options{Scenario: sc, Kinds: kinds, Commands: testCommands(), LogDir: t.TempDir()})
	for _, r := range results {
		if r.Failed != "" {
			t.Fatalf("%s failed: %s", r.Name, r.Failed)
		}
		if r.Errors.Total() != 0 || r.Sessions.OpenAtEnd != 30 {
			t.Errorf("%s: errors %+v, open %d", r.Name, r.Errors, r.Sessions.OpenAtEnd)
		}
		// One echo per session, all inside the window that rate 0 opens at the baseline.
		if r.Traffic.Latency.Count != 30 {
			t.Errorf("%s: %d first echoes timed, want 30", r.Name, r.Traffic.Latency.Count)
		}
		if !r.Proxy.Measured || r.Proxy.RSSAvg == 0 {
			t.Errorf("%s: proxy not measured: %+v", r.Name, r.Proxy)
		}
	}
}

// TestMissingNginxSaysHow checks the message a user without nginx gets.
func TestMissingNginxSaysHow(t *testing.T) {
	if _, err := findNginx(""); err == nil {
		t.Skip("nginx is installed")
	}
	_, err := nginxCommand("", "127.0.0.1:1", nil, t.TempDir(), nil)
	if !errors.Is(err, ErrNoNginx) || !strings.Contains(err.Error(), "make bench-deps") {
		t.Errorf("err = %v", err)
	}
}
