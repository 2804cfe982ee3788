package loadtest

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResult(name string, cpu float64) *Result {
	sc := Scenarios["seed-table-scaled"]
	r := &Result{Name: name, Scenario: sc, Machine: MachineResult{Cores: 2, Busy: 0.4}}
	r.Sessions = SessionResult{Target: sc.Conns, Opened: int64(sc.Conns), OpenAtEnd: int64(sc.Conns),
		Setup: Percentiles{P50: 2000, P99: 9000}, AllOpenSec: 0.4, ProxyCPUPerSession: 40}
	r.Traffic = TrafficResult{TargetRate: sc.TargetRate(), Throughput: sc.TargetRate(), Latency: Percentiles{P50: 200, P99: 1500, P999: 4000}}
	if name != KindDirect {
		r.Proxy = ProcResult{Measured: true, Cores: cpu, CPUPerMsg: cpu * 1e6 / sc.TargetRate(), RSSAvg: 40e6, RSSPeak: 45e6, Baseline: 10e6, RSSPerSession: 10e3}
	}
	r.Client = ProcResult{Measured: true, Cores: 0.2}
	for i := 0; i < 5; i++ {
		r.Series = append(r.Series, Point{T: float64(i + 1), Phase: "measure", MsgPerSec: 9000, P99: 1500, ProxyRSS: 40e6})
	}
	return r
}

func TestWriteTableShapeAndRatios(t *testing.T) {
	results := []*Result{sampleResult(KindGoroutine, 0.4), sampleResult(KindWsgate, 0.1), sampleResult(KindDirect, 0)}
	var b strings.Builder
	WriteTable(&b, results)
	out := b.String()
	for _, want := range []string{
		"| metric | goroutine | wsgate | direct |",
		"| proxy CPU | 0.40 cores (20% of 2) | 0.10 cores (5% of 2) | — (no proxy) |",
		"| throughput, msg/s (target) | 9,000 (100%) |",
		"| ratio to wsgate | goroutine |",
		"| proxy CPU per message | 4.00x |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestSetupCPURows checks the session setup costs: the proxy's, and the
// backends' (which a proxy that dials per session makes them pay).
func TestSetupCPURows(t *testing.T) {
	wsgate, nginx := sampleResult(KindWsgate, 0.1), sampleResult(KindNginx, 0.1)
	nginx.Backends.Measured, nginx.Sessions.BackendsCPUPerSession = true, 118
	var b strings.Builder
	WriteTable(&b, []*Result{wsgate, nginx})
	for _, want := range []string{
		"| proxy CPU per session setup | 40 µs | 40 µs |",
		"| backends CPU per session setup | — (not ours) | 118 µs |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestAnalyzeWarnings(t *testing.T) {
	t.Run("clean run has none", func(t *testing.T) {
		r := sampleResult(KindWsgate, 0.1)
		analyze(r)
		if len(r.Warnings) != 0 {
			t.Fatalf("warnings: %q", r.Warnings)
		}
	})
	t.Run("loss is loud", func(t *testing.T) {
		r := sampleResult(KindWsgate, 0.1)
		r.Errors.Lost = 3
		r.Errors.UnexpectedCloses = map[string]int64{"close 1011 from the peer": 2}
		analyze(r)
		if len(r.Warnings) == 0 || !strings.HasPrefix(r.Warnings[0], "LOSS: 5 errors") {
			t.Fatalf("warnings: %q", r.Warnings)
		}
	})
	t.Run("client bottleneck", func(t *testing.T) {
		r := sampleResult(KindWsgate, 0.3)
		r.Traffic.Throughput = r.Traffic.TargetRate * 0.6
		r.Client.Cores = 0.9
		r.Machine.Busy = 0.97
		analyze(r)
		joined := strings.Join(r.Warnings, "\n")
		for _, want := range []string{"target not reached: 5,400 of 9,000 msg/s (60%)", "saturated", "CLIENT BOTTLENECK"} {
			if !strings.Contains(joined, want) {
				t.Errorf("warnings lack %q: %q", want, r.Warnings)
			}
		}
	})
	t.Run("proxy bottleneck is not blamed on the client", func(t *testing.T) {
		r := sampleResult(KindGoroutine, 1.5)
		r.Traffic.Throughput = r.Traffic.TargetRate * 0.8
		r.Client.Cores = 0.3
		analyze(r)
		if strings.Contains(strings.Join(r.Warnings, "\n"), "CLIENT") {
			t.Errorf("client blamed: %q", r.Warnings)
		}
	})
}

func TestChartIsWellFormedSVG(t *testing.T) {
	results := []*Result{sampleResult(KindWsgate, 0.1), sampleResult(KindNginx, 0.2)}
	results[1].Failed = "nginx is not installed"
	var b strings.Builder
	renderChart(&b, results)
	dec := xml.NewDecoder(strings.NewReader(b.String()))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	// Two runs x three panels.
	if polylines != 6 {
		t.Errorf("%d polylines, want 6", polylines)
	}
	if strings.Contains(b.String(), "http://") && !strings.Contains(b.String(), `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("the chart must not reference external assets")
	}
}

func TestNginxConfig(t *testing.T) {
	text, err := renderNginxConfig(nginxConfig{
		Prefix: "/tmp/x", Listen: "127.0.0.1:9000", Backends: []string{"127.0.0.1:9001", "127.0.0.1:9002"},
		Workers: 2, WorkerConnections: 19900, RlimitNofile: 20000, Backlog: 4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"worker_processes 2;", "worker_rlimit_nofile 20000;", "worker_connections 19900;",
		"server 127.0.0.1:9001;", "server 127.0.0.1:9002;", "listen 127.0.0.1:9000 backlog=4096",
		"proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "daemon off;",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
}

func TestScenarioFlagsOverride(t *testing.T) {
	var stderr strings.Builder
	// -wsgate names any file that exists, so the binary check passes.
	code := Main([]string{"-scenario", "density", "-conns", "10", "-rate", "2", "-proxy", "bogus", "-wsgate", "/bin/sh"}, &strings.Builder{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `unknown proxy "bogus"`) {
		t.Fatalf("code %d, stderr %q", code, stderr.String())
	}
	// Every kind of flag a scenario takes, given a value the scenario does
	// not have; the others keep the scenario's.
	f, fsys, code, done := parseFlags([]string{"-scenario", "density", "-conns", "10", "-duration", "3s",
		"-binary", "-dial-rate", "250.5", "-settle", "1.5s", "-wsgate", "/bin/sh"}, io.Discard)
	if done {
		t.Fatalf("parseFlags: exit %d", code)
	}
	o, err := f.options(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sc := o.Scenario
	if sc.Conns != 10 || sc.Duration != 3*time.Second || !sc.Binary || sc.DialRate != 250.5 || sc.Settle != 1500*time.Millisecond ||
		sc.Rate != 0 || sc.Backends != 3 || sc.Size != 1024 {
		t.Errorf("scenario after overrides: %+v", sc)
	}
}

// TestReplotRedrawsFromJSON checks that -replot gives back the table that
// was printed, from the JSON alone.
func TestReplotRedrawsFromJSON(t *testing.T) {
	results := []*Result{sampleResult(KindWsgate, 0.1), sampleResult(KindGoroutine, 0.3)}
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	if err := WriteJSON(path, Report{Results: results}); err != nil {
		t.Fatal(err)
	}
	var want, got, stderr strings.Builder
	WriteTable(&want, results)
	chart := filepath.Join(dir, "r.svg")
	if code := Main([]string{"-replot", path, "-chart", chart}, &got, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got.String() != want.String() {
		t.Errorf("replotted table differs:\n%s\nwant:\n%s", got.String(), want.String())
	}
	if b, err := os.ReadFile(chart); err != nil || !strings.HasPrefix(string(b), "<svg") {
		t.Errorf("chart: %v", err)
	}
}

// TestWriteReportsWritesEveryOutput checks -md, -json and -chart land in
// folders that did not exist, and the Markdown file is the printed table.
func TestWriteReportsWritesEveryOutput(t *testing.T) {
	results := []*Result{sampleResult(KindWsgate, 0.1), sampleResult(KindGoroutine, 0.3)}
	dir := t.TempDir()
	f := cliFlags{
		mdPath:    filepath.Join(dir, "md", "r.md"),
		jsonPath:  filepath.Join(dir, "json", "r.json"),
		chartPath: filepath.Join(dir, "chart", "r.svg"),
	}
	var stdout, stderr strings.Builder
	if !f.writeReports([]string{"-scenario", "density"}, results, &stdout, &stderr) {
		t.Fatalf("writeReports failed: %s", stderr.String())
	}
	for _, path := range []string{f.mdPath, f.jsonPath, f.chartPath} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if path == f.mdPath && string(b) != stdout.String() {
			t.Errorf("-md file differs from the printed table:\n%s\nprinted:\n%s", b, stdout.String())
		}
	}
	// An output that cannot be written fails the call and says which.
	f.jsonPath = filepath.Join(f.mdPath, "under-a-file.json")
	stderr.Reset()
	if f.writeReports(nil, results, io.Discard, &stderr) || !strings.HasPrefix(stderr.String(), "loadtest: -json:") {
		t.Errorf("unwritable -json: stderr %q", stderr.String())
	}
}
