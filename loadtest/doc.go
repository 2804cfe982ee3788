// Package loadtest measures WebSocket proxies the way the field report did:
// N echo backends, the proxy under test and a load generator, each in its
// own process so that /proc can tell their costs apart.
//
// It owns:
//   - the run: starting backends (`wsgate echo`) and the proxy under test
//     (wsgate, the goroutine baseline, nginx, none, or any URL), waiting
//     for them to be ready and quiet, and stopping them (run.go, target.go,
//     nginx.go, proc.go); with -tls, clients reach wsgate or nginx over
//     wss:// with a throwaway CA and certificate made for the invocation
//     (tls.go), the backends staying ws://;
//   - the load generator: C client sessions opened at once or at a dial
//     rate, each with one reader goroutine, driven by a few sender
//     goroutines that walk a phase-ordered schedule instead of one timer
//     per connection (client.go, pacing.go, payload.go);
//   - measurement: round-trip latency from timestamps carried in the
//     payload into sharded HDR histograms (latency.go), CPU and memory of
//     a process tree from /proc (procfs.go, sampler.go);
//   - reporting: the figures of a run (result.go), the verdicts a reader
//     must see next to them: loss, saturation, a client that is the
//     bottleneck, a disturbed machine (analyze.go), a live line per second,
//     the Markdown table with ratios, JSON, and an SVG chart (progress.go,
//     report.go, format.go, chart.go), plus pprof capture from an admin
//     endpoint (pprof.go);
//   - the CLI that ties scenarios and flags together (cli.go, scenario.go).
//
// The goroutine-per-connection baseline proxy lives in the goroutineproxy
// subpackage and runs as its own process (`loadtest goroutine-proxy`).
//
// Concurrency: a Run owns everything it starts and stops all of it before
// returning. Client sessions are touched by their reader goroutine and by
// the one sender goroutine that owns them; counters others read are atomics
// or live behind a shard's mutex.
package loadtest
