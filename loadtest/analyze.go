package loadtest

import (
	"fmt"
	"runtime"
)

// Thresholds of the verdicts.
const (
	reachedShare     = 0.95 // achieved/target at or above this counts as reached
	saturatedShare   = 0.90 // machine busy at or above this is saturated
	clientHotShare   = 0.90 // generator cores over GOMAXPROCS at or above this is saturated
	otherNoticeCores = 0.15 // CPU of processes outside the run worth a warning
)

// analyze adds the warnings a reader must see next to the figures: any
// loss, a target not reached and where the CPU went, and a load generator
// that may itself be the bottleneck. It only reads the result's figures,
// so tests feed it made-up results.
func analyze(r *Result) {
	add := func(format string, args ...any) { r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...)) }
	if r.Failed != "" {
		return
	}
	e := r.Errors
	if n := e.Total(); n > 0 {
		add("LOSS: %s errors: %d lost messages; dial errors: %s; unexpected closes: %s; write errors: %s; bad echoes: %s",
			fmtInt(n), e.Lost, orNone(describeCounts(e.DialErrors)), orNone(describeCounts(e.UnexpectedCloses)),
			orNone(describeCounts(e.WriteErrors)), orNone(describeCounts(e.BadEchoes)))
	}
	if r.Sessions.Opened < int64(r.Sessions.Target) {
		add("only %s of %s sessions opened", fmtInt(r.Sessions.Opened), fmtInt(int64(r.Sessions.Target)))
	}
	if r.Machine.Other >= otherNoticeCores {
		add("other processes used %.2f cores during the window: the figures may be disturbed", r.Machine.Other)
	}
	client := r.Client.Cores
	gomaxprocs := float64(runtime.GOMAXPROCS(0))
	clientHot := client >= clientHotShare*gomaxprocs
	if r.Scenario.Rate > 0 && r.Traffic.TargetRate > 0 {
		share := r.Traffic.Throughput / r.Traffic.TargetRate
		if share < reachedShare {
			proxy := "no proxy"
			if r.Proxy.Measured {
				proxy = fmt.Sprintf("proxy %.2f cores", r.Proxy.Cores)
			}
			where := fmt.Sprintf("machine %.0f%% busy: %s, backends %.2f, loadtest %.2f",
				100*r.Machine.Busy, proxy, r.Backends.Cores, client)
			if r.Machine.Busy >= saturatedShare {
				where = fmt.Sprintf("saturated: the %d cores were %s", r.Machine.Cores, where[len("machine "):])
			}
			add("target not reached: %s of %s msg/s (%.0f%%); %s", fmtRate(r.Traffic.Throughput),
				fmtRate(r.Traffic.TargetRate), 100*share, where)
			if r.Traffic.Skipped > 0 {
				add("the load generator skipped %s sends it could not make on time", fmtInt(r.Traffic.Skipped))
			}
			if r.Proxy.Measured && client >= r.Proxy.Cores {
				if r.Machine.Busy >= saturatedShare {
					add("CLIENT BOTTLENECK: the load generator used as much CPU as the proxy (%.2f cores, the proxy %.2f) on a saturated machine: the rate reached is the ceiling of the machine shared with the client, not of the proxy alone", client, r.Proxy.Cores)
				} else {
					add("CLIENT BOTTLENECK: the load generator used %.2f cores, the proxy %.2f, and the machine had room: the client limits this run, not the proxy", client, r.Proxy.Cores)
				}
				clientHot = false // said already
			}
		}
	}
	if clientHot {
		add("CLIENT BOTTLENECK: the load generator used %.2f cores of its %d: its figures are a floor for the proxy, not a ceiling", client, int(gomaxprocs))
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
