package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// describeScenario is the table's title line; tlsVersion ("TLS 1.3", ""
// for plain ws://) says how the clients reach the front.
func describeScenario(s Scenario, tlsVersion string) string {
	kind := "text"
	if s.Binary {
		kind = "binary"
	}
	open := "opened at once"
	if s.DialRate > 0 {
		open = fmt.Sprintf("opened at %s/s", fmtRate(s.DialRate))
	}
	load := fmt.Sprintf("%s %s at %g msg/s each (%s msg/s)", sizeWord(s.Size), kind, s.Rate, fmtRate(s.TargetRate()))
	if s.Rate <= 0 {
		load = fmt.Sprintf("one %s %s echo each, then idle", sizeWord(s.Size), kind)
	}
	over := ""
	if tlsVersion != "" {
		over = fmt.Sprintf(", clients over wss:// (%s)", tlsVersion)
	}
	return fmt.Sprintf("%s: %s sessions over %d backends%s, %s, %s; %v measured after a %v warm-up",
		s.Name, fmtInt(int64(s.Conns)), s.Backends, over, open, load, s.Duration, s.Warmup)
}

// describeResults is the title line of a table or chart of results.
func describeResults(results []*Result) string {
	tlsVersion := ""
	if t := results[0].TLS; t != nil {
		tlsVersion = t.Version
	}
	return describeScenario(results[0].Scenario, tlsVersion)
}

// WriteTable writes the Markdown table of one scenario: a row per metric,
// a column per proxy, the field report's shape, then the ratios to the
// reference proxy (wsgate if it ran) and every warning.
func WriteTable(w io.Writer, results []*Result) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "### %s\n\n", describeResults(results))
	rows := tableHead("metric", results)
	row := func(name string, cell func(r *Result) string) {
		line := []string{name}
		for _, r := range results {
			switch {
			case r.Failed != "":
				line = append(line, "failed")
			default:
				line = append(line, cell(r))
			}
		}
		rows = append(rows, line)
	}
	proxyRow := func(name string, cell func(r *Result) string) {
		row(name, func(r *Result) string {
			if !r.Proxy.Measured {
				return "— (no proxy)"
			}
			return cell(r)
		})
	}
	idle := results[0].Scenario.Rate <= 0
	cores := results[0].Machine.Cores

	row("sessions open / target", func(r *Result) string {
		return fmtInt(r.Sessions.OpenAtEnd) + " / " + fmtInt(int64(r.Sessions.Target))
	})
	if !idle {
		row("throughput, msg/s (target)", func(r *Result) string {
			return fmt.Sprintf("%s (%.0f%%)", fmtRate(r.Traffic.Throughput), 100*r.Traffic.Throughput/r.Traffic.TargetRate)
		})
	}
	latencyName := "round trip p50 / p99 / p99.9, ms"
	if idle {
		latencyName = "first echo p50 / p99 / p99.9, ms"
	}
	row(latencyName, func(r *Result) string {
		l := r.Traffic.Latency
		return fmt.Sprintf("%s / %s / %s", fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.P999))
	})
	if !idle {
		proxyRow("proxy CPU", func(r *Result) string { return fmtCores(r.Proxy.Cores, cores) })
		proxyRow("proxy CPU per message", func(r *Result) string { return fmt.Sprintf("%.1f µs", r.Proxy.CPUPerMsg) })
	}
	if idle {
		proxyRow("proxy CPU holding the idle sessions", func(r *Result) string { return fmtCores(r.Proxy.Cores, cores) })
	}
	proxyRow("proxy memory avg / peak (RSS)", func(r *Result) string {
		return fmtMB(r.Proxy.RSSAvg) + " / " + fmtMB(r.Proxy.RSSPeak)
	})
	proxyRow("proxy idle RSS before sessions", func(r *Result) string { return fmtMB(r.Proxy.Baseline) })
	proxyRow("proxy RSS per session, over idle", func(r *Result) string { return fmtKB(r.Proxy.RSSPerSession) })
	proxyRow("proxy RSS per session, all in", func(r *Result) string { return fmtKB(r.Proxy.RSSTotalPerSession) })
	row("session setup p50 / p99, ms", func(r *Result) string {
		s := r.Sessions
		return fmt.Sprintf("%s / %s (all open in %.2f s)", fmtMs(s.Setup.P50), fmtMs(s.Setup.P99), s.AllOpenSec)
	})
	proxyRow("proxy CPU per session setup", func(r *Result) string {
		return fmt.Sprintf("%.0f µs", r.Sessions.ProxyCPUPerSession)
	})
	row("backends CPU per session setup", func(r *Result) string {
		if !r.Backends.Measured {
			return "— (not ours)"
		}
		return fmt.Sprintf("%.0f µs", r.Sessions.BackendsCPUPerSession)
	})
	if results[0].TLS != nil {
		row("TLS negotiated (version, cipher, key exchange)", func(r *Result) string {
			if r.TLS == nil || r.TLS.CipherSuite == "" {
				return "—"
			}
			return r.TLS.String()
		})
	}
	row("errors: dial / closed / lost / bad", func(r *Result) string {
		e := r.Errors
		return fmt.Sprintf("%d / %d / %d / %d", sum(e.DialErrors), sum(e.UnexpectedCloses)+sum(e.WriteErrors), e.Lost, sum(e.BadEchoes))
	})
	row("backends CPU", func(r *Result) string {
		if !r.Backends.Measured {
			return "— (not ours)"
		}
		return fmt.Sprintf("%.2f cores", r.Backends.Cores)
	})
	row("loadtest CPU", func(r *Result) string { return fmt.Sprintf("%.2f cores", r.Client.Cores) })
	row("machine busy (other processes)", func(r *Result) string {
		return fmt.Sprintf("%.0f%% of %d cores (%.2f)", 100*r.Machine.Busy, r.Machine.Cores, r.Machine.Other)
	})
	writeRows(w, rows)

	writeRatios(w, results, idle)
	for _, r := range results {
		if r.Failed != "" {
			fmt.Fprintf(w, "\n- **%s failed**: %s\n", r.Name, firstLine(r.Failed))
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "\n- %s: %s\n", r.Name, warn)
		}
	}
	fmt.Fprintln(w)
}

// writeRatios compares every measured proxy with the reference: wsgate if
// it ran, else the first measured proxy. Each ratio is other/reference, so
// above 1 means the other proxy costs more (or, for throughput, does more).
func writeRatios(w io.Writer, results []*Result, idle bool) {
	var ref *Result
	var others []*Result
	for _, r := range results {
		if r.Failed != "" || !r.Proxy.Measured {
			continue
		}
		if ref == nil || (r.Name == KindWsgate && ref.Name != KindWsgate) {
			if ref != nil {
				others = append(others, ref)
			}
			ref = r
			continue
		}
		others = append(others, r)
	}
	if ref == nil || len(others) == 0 {
		return
	}
	rows := tableHead("ratio to "+ref.Name, others)
	add := func(name string, f func(r *Result) float64) {
		line := []string{name}
		for _, o := range others {
			line = append(line, fmtRatio(f(o), f(ref)))
		}
		rows = append(rows, line)
	}
	if !idle {
		add("throughput", func(r *Result) float64 { return r.Traffic.Throughput })
		add("proxy CPU per message", func(r *Result) float64 { return r.Proxy.CPUPerMsg })
		add("round trip p99", func(r *Result) float64 { return float64(r.Traffic.Latency.P99) })
	}
	add("proxy avg RSS", func(r *Result) float64 { return float64(r.Proxy.RSSAvg) })
	add("proxy peak RSS", func(r *Result) float64 { return float64(r.Proxy.RSSPeak) })
	add("proxy RSS per session, over idle", func(r *Result) float64 { return r.Proxy.RSSPerSession })
	add("proxy RSS per session, all in", func(r *Result) float64 { return r.Proxy.RSSTotalPerSession })
	add("proxy CPU per session setup", func(r *Result) float64 { return r.Sessions.ProxyCPUPerSession })
	fmt.Fprintln(w)
	writeRows(w, rows)
}

func writeRows(w io.Writer, rows [][]string) {
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// tableHead is a Markdown table's header row and rule: corner, then a
// column per result.
func tableHead(corner string, cols []*Result) [][]string {
	head, rule := []string{corner}, []string{"---"}
	for _, r := range cols {
		head = append(head, r.Name)
		rule = append(rule, "---")
	}
	return [][]string{head, rule}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (see the log)"
	}
	return s
}

// Report is what -json writes: the machine, the invocation and every run.
type Report struct {
	Time    time.Time   `json:"time"`
	Command string      `json:"command"`
	Machine MachineInfo `json:"machine"`
	Results []*Result   `json:"results"`
}

// MachineInfo describes the machine a report was measured on.
type MachineInfo struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	MemoryGB   float64 `json:"memory_gb"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	GOMAXPROCS int     `json:"gomaxprocs"`
}

// DescribeMachine reads the machine's description from /proc.
func DescribeMachine() MachineInfo {
	m := MachineInfo{Cores: runtime.NumCPU(), Go: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				if kb, err := parseKB([]byte(v)); err == nil {
					m.MemoryGB = float64(kb) / (1 << 20)
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// WriteJSON writes the report to path.
func WriteJSON(path string, rep Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
