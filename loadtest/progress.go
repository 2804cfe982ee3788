package loadtest

import "fmt"

// progressLine is the live line printed once a second:
//
//	seed-table-scaled/wsgate  measure   14s  open 3,000/3,000    9,001 msg/s  p99 1.23 ms  proxy 21% CPU  38.2 MB  loadtest 17% CPU  machine 64%
func progressLine(label string, p Point, target int, proxyMeasured bool) string {
	p99 := "   —   "
	if p.P99 > 0 {
		p99 = fmtMs(p.P99) + " ms"
	}
	proxy := "proxy not measured"
	if proxyMeasured {
		proxy = fmt.Sprintf("proxy %s CPU %s", fmtPct(p.ProxyCPU), fmtMB(p.ProxyRSS))
	}
	return fmt.Sprintf("%-26s %-8s %4.0fs  open %s/%s  %8s msg/s  p99 %s  %s  loadtest %s CPU  machine %.0f%%",
		label, p.Phase, p.T, fmtInt(p.Open), fmtInt(int64(target)), fmtRate(p.MsgPerSec), p99, proxy,
		fmtPct(p.ClientCPU), 100*p.Busy)
}

// oneLineSummary says how a run went in one line.
func oneLineSummary(r *Result) string {
	s := fmt.Sprintf("%s/%s sessions open", fmtInt(r.Sessions.OpenAtEnd), fmtInt(int64(r.Sessions.Target)))
	if r.Scenario.Rate > 0 {
		s += fmt.Sprintf(", %s msg/s of %s", fmtRate(r.Traffic.Throughput), fmtRate(r.Traffic.TargetRate))
	}
	s += fmt.Sprintf(", p99 %s ms", fmtMs(r.Traffic.Latency.P99))
	if r.Proxy.Measured {
		s += fmt.Sprintf(", proxy %.2f cores, %s avg / %s peak RSS", r.Proxy.Cores, fmtMB(r.Proxy.RSSAvg), fmtMB(r.Proxy.RSSPeak))
	}
	return s + fmt.Sprintf(", %s errors", fmtInt(r.Errors.Total()))
}
