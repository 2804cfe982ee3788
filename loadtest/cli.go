package loadtest

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

const usageText = `loadtest measures WebSocket proxies: it starts N echo backends and the proxy
under test as separate processes, opens C client sessions, sends S-byte messages
at R msg/s per session and reports throughput, round-trip latency and the
proxy's CPU and memory (from /proc), next to its own CPU use.

usage:
  loadtest [flags]                       run a scenario against one proxy
  loadtest -compare wsgate,goroutine,nginx,direct [flags]
  loadtest -compare wsgate,nginx -tls [flags]   clients over wss:// to the front
  loadtest goroutine-proxy [flags]       run the goroutine baseline proxy
  loadtest big-message [-size N]         RSS of the echo endpoint and the gateway while one N-byte message streams through

scenarios (-scenario NAME; flags given next to it override its values):
%s
proxies: wsgate (bin/wsgate), goroutine (the baseline in loadtest/goroutineproxy),
nginx (Debian's nginx), direct (no proxy), url (a running proxy at -url)

flags:
`

// cliFlags are the command line, before it is turned into Options.
type cliFlags struct {
	scenario, proxy, compare           string
	jsonPath, chartPath, mdPath, pprof string
	url                                string
	pid                                int
	wsgateBin, wsgateArgs, nginxBin    string
	logDir, selfProfile, replot        string
	quiet                              bool
	tls                                bool     // clients speak wss:// to the front
	tlsVersion, tlsGroups              string   // with tls
	s                                  Scenario // overrides, applied if set
}

// Main is the loadtest command; it returns the exit code: 0 when every run
// completed without loss, 1 when a run failed or lost anything, 2 for
// usage errors.
func Main(args []string, stdout, stderr io.Writer) int {
	f, fs, code, done := parseFlags(args, stderr)
	if done {
		return code
	}
	if f.replot != "" {
		return replot(f.replot, f.chartPath, stdout, stderr)
	}
	o, err := f.options(fs)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if !f.quiet {
		o.Progress = stderr
	}
	// The generator allocates little per message; trading memory for fewer
	// GC cycles keeps its own CPU use, which competes with the proxy's on a
	// small machine, down.
	debug.SetGCPercent(400)

	keepLogs := f.logDir != ""
	if !keepLogs {
		dir, err := os.MkdirTemp("", "wsgate-loadtest-")
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
		o.LogDir = dir
	}
	if f.selfProfile != "" {
		stop, err := startSelfProfile(f.selfProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest: -self-profile:", err)
			return 2
		}
		defer stop()
	}
	tlsVersion := ""
	if o.TLS != nil {
		tlsVersion = o.TLS.versionName()
	}
	fmt.Fprintf(stderr, "%s\n", describeScenario(o.Scenario, tlsVersion))
	results := Run(o)

	code = exitCode(results)
	if code == 0 && !keepLogs {
		_ = os.RemoveAll(o.LogDir)
	} else if code != 0 {
		fmt.Fprintf(stderr, "logs kept in %s\n", o.LogDir)
	}
	if !f.writeReports(args, results, stdout, stderr) {
		code = 1
	}
	return code
}

// parseFlags reads the command line. done says Main should return code
// at once: 0 after -h, 2 for a usage error.
func parseFlags(args []string, stderr io.Writer) (f *cliFlags, fs *flag.FlagSet, code int, done bool) {
	fs = flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f = new(cliFlags)
	f.register(fs)
	fs.Usage = func() {
		var list strings.Builder
		for _, n := range ScenarioNames() {
			fmt.Fprintf(&list, "  %-18s %s\n", n, Scenarios[n].Description)
		}
		fmt.Fprintf(stderr, usageText, list.String())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, fs, 0, true
		}
		return f, fs, 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected argument %q\n", fs.Arg(0))
		return f, fs, 2, true
	}
	return f, fs, 0, false
}

// exitCode is 1 when a run failed or lost anything, else 0.
func exitCode(results []*Result) int {
	for _, r := range results {
		if r.Failed != "" || r.Errors.Total() > 0 {
			return 1
		}
	}
	return 0
}

// writeReports prints the table and writes the -md, -json and -chart files
// asked for; it reports whether all of them were written.
func (f *cliFlags) writeReports(args []string, results []*Result, stdout, stderr io.Writer) bool {
	var table strings.Builder
	WriteTable(&table, results)
	fmt.Fprint(stdout, table.String())
	outputs := []struct {
		path, prefix string
		write        func(path string) error
	}{
		{f.mdPath, "loadtest:", func(path string) error { return os.WriteFile(path, []byte(table.String()), 0o644) }},
		{f.jsonPath, "loadtest: -json:", func(path string) error {
			return WriteJSON(path, Report{Time: time.Now().UTC(), Command: "loadtest " + strings.Join(args, " "), Machine: DescribeMachine(), Results: results})
		}},
		{f.chartPath, "loadtest: -chart:", func(path string) error { return WriteChart(path, results) }},
	}
	ok := true
	for _, out := range outputs {
		if out.path == "" {
			continue
		}
		err := mkParent(out.path)
		if err == nil {
			err = out.write(out.path)
		}
		if err != nil {
			fmt.Fprintln(stderr, out.prefix, err)
			ok = false
		}
	}
	return ok
}

// register declares the flags on fs.
func (f *cliFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.scenario, "scenario", "seed-table-scaled", "scenario name")
	fs.StringVar(&f.proxy, "proxy", KindWsgate, "proxy under test: wsgate, goroutine, nginx, direct or url")
	fs.StringVar(&f.compare, "compare", "", "comma-separated proxies to run in turn, or \"all\" (wsgate,goroutine,nginx,direct)")
	bindScenario(fs, &f.s)
	fs.StringVar(&f.url, "url", "", "WebSocket URL of a running proxy (with -proxy url)")
	fs.IntVar(&f.pid, "pid", 0, "process id of the proxy at -url, to measure it (its children are included)")
	fs.StringVar(&f.jsonPath, "json", "", "write every result as JSON to FILE")
	fs.StringVar(&f.chartPath, "chart", "", "write an SVG chart of throughput, p99 and proxy RSS over time to FILE")
	fs.StringVar(&f.mdPath, "md", "", "also write the Markdown table to FILE")
	fs.StringVar(&f.pprof, "pprof", "", "capture CPU and heap profiles of Go proxies (wsgate, goroutine) during the measured window into DIR")
	fs.StringVar(&f.wsgateBin, "wsgate", "bin/wsgate", "the wsgate binary (gateway and echo backends)")
	fs.StringVar(&f.wsgateArgs, "wsgate-args", "", "extra flags for the wsgate gateway, space-separated")
	fs.StringVar(&f.nginxBin, "nginx", "", "the nginx binary (default: from PATH or /usr/sbin/nginx)")
	fs.BoolVar(&f.tls, "tls", false, "clients speak wss:// to the front (wsgate, nginx; backends stay ws://), verified against a throwaway CA and P-256 certificate for 127.0.0.1")
	fs.StringVar(&f.tlsVersion, "tls-version", "1.3", "with -tls: the one TLS version clients offer and the fronts accept (1.2 or 1.3)")
	fs.StringVar(&f.tlsGroups, "tls-groups", DefaultTLSGroups, "with -tls: key exchanges the clients offer, comma-separated (x25519, p256, p384, x25519mlkem768; in TLS 1.2 include p256, the certificate's curve)")
	fs.StringVar(&f.logDir, "logdir", "", "keep the processes' logs and generated configs here (default: a temporary folder, removed unless a run failed)")
	fs.BoolVar(&f.quiet, "quiet", false, "no live line")
	fs.StringVar(&f.selfProfile, "self-profile", "", "write a CPU profile of the load generator itself (whole invocation) to FILE")
	fs.StringVar(&f.replot, "replot", "", "run nothing: read a -json FILE and write its table (and -chart) again")
}

// bindScenario declares the flags that override a scenario's values, each
// bound to its field of s with the value there as its default. register
// binds them to the zero Scenario; options binds them again to the chosen
// scenario to apply the ones given.
func bindScenario(fs *flag.FlagSet, s *Scenario) {
	fs.IntVar(&s.Conns, "conns", s.Conns, "client sessions")
	fs.IntVar(&s.Size, "size", s.Size, fmt.Sprintf("message size in bytes (at least %d)", MinMessageSize))
	fs.BoolVar(&s.Binary, "binary", s.Binary, "send binary messages instead of text")
	fs.Float64Var(&s.Rate, "rate", s.Rate, "messages per second per session (0 with -scenario density: one echo, then idle)")
	fs.Float64Var(&s.DialRate, "dial-rate", s.DialRate, "sessions opened per second (0: all at once)")
	fs.DurationVar(&s.Duration, "duration", s.Duration, "measured window")
	fs.DurationVar(&s.Warmup, "warmup", s.Warmup, "warm-up after all sessions are open")
	fs.IntVar(&s.Backends, "backends", s.Backends, "echo backend processes")
	fs.IntVar(&s.PoolSize, "pool-size", s.PoolSize, "backend connections per backend for wsgate and goroutine (default ceil(conns/backends) + 5%)")
	fs.IntVar(&s.Senders, "senders", s.Senders, "sender goroutines in the load generator")
	fs.DurationVar(&s.Settle, "settle", s.Settle, "longest wait for the processes to go quiet before the idle baseline")
}

// options resolves the scenario, applies the flags that were given and
// checks what can be checked before anything starts.
func (f *cliFlags) options(fs *flag.FlagSet) (Options, error) {
	sc, ok := Scenarios[f.scenario]
	if !ok {
		return Options{}, fmt.Errorf("loadtest: unknown scenario %q (have %s)", f.scenario, strings.Join(ScenarioNames(), ", "))
	}
	given := flag.NewFlagSet("scenario", flag.ContinueOnError)
	bindScenario(given, &sc)
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if given.Lookup(fl.Name) != nil && err == nil {
			err = given.Set(fl.Name, fl.Value.String())
		}
	})
	if err != nil {
		return Options{}, fmt.Errorf("loadtest: %w", err)
	}
	if err := sc.validate(); err != nil {
		return Options{}, err
	}
	kinds := []string{f.proxy}
	if f.compare != "" {
		kinds = nil
		list := f.compare
		if list == "all" {
			list = strings.Join(Kinds, ",")
		}
		for _, k := range strings.Split(list, ",") {
			if k = strings.TrimSpace(k); k != "" {
				kinds = append(kinds, k)
			}
		}
	}
	var tlsOpts *TLSOptions
	if f.tls {
		if tlsOpts, err = ParseTLSOptions(f.tlsVersion, f.tlsGroups); err != nil {
			return Options{}, err
		}
	} else if set := flagsSet(fs); set["tls-version"] || set["tls-groups"] {
		return Options{}, errors.New("loadtest: -tls-version and -tls-groups need -tls")
	}
	needWsgate := false
	for _, k := range kinds {
		if !validKind(k) {
			return Options{}, fmt.Errorf("loadtest: unknown proxy %q (want wsgate, goroutine, nginx, direct or url)", k)
		}
		if k == KindURL && f.url == "" {
			return Options{}, errors.New("loadtest: -proxy url needs -url ws://host:port/path")
		}
		if f.tls && !tlsKind(k) {
			return Options{}, fmt.Errorf("loadtest: -tls: %s has no TLS listener here; -tls runs wsgate and nginx only", k)
		}
		if k != KindURL {
			needWsgate = true // the echo backends are wsgate
		}
	}
	if needWsgate {
		if _, err := os.Stat(f.wsgateBin); err != nil {
			return Options{}, fmt.Errorf("loadtest: the wsgate binary %s is missing (run `make build`, or pass -wsgate PATH): %w", f.wsgateBin, err)
		}
	}
	cmds := DefaultCommands(f.wsgateBin)
	cmds.NginxBin = f.nginxBin
	return Options{
		Scenario:   sc,
		Kinds:      kinds,
		URL:        f.url,
		PID:        f.pid,
		Commands:   cmds,
		WsgateArgs: strings.Fields(f.wsgateArgs),
		LogDir:     f.logDir,
		PprofDir:   f.pprof,
		TLS:        tlsOpts,
	}, nil
}

// flagsSet names the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

func mkParent(path string) error { return os.MkdirAll(filepath.Dir(path), 0o755) }

// replot writes the table and, with chartPath, the chart of a saved -json
// report, so a chart can be redrawn without running the load again.
func replot(jsonPath, chartPath string, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest: -replot:", err)
		return 2
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintln(stderr, "loadtest: -replot:", err)
		return 2
	}
	WriteTable(stdout, rep.Results)
	if chartPath != "" {
		if err := WriteChart(chartPath, rep.Results); err != nil {
			fmt.Fprintln(stderr, "loadtest: -chart:", err)
			return 1
		}
	}
	return 0
}
