// Package hostile is wsgate's hostile-peer suite: the real gateway binary,
// built with the race detector and run as a separate process, is attacked
// by evil backends and evil clients over loopback while an honest session
// (the canary) keeps doing round trips through the same process. Every
// scenario asserts outcomes the way an operator sees them, never speed:
//
//   - the process is still running and GET /healthz answers 200;
//   - its resident memory (VmRSS from /proc/PID/status) stayed under
//     baseline + 150 MiB for the whole scenario, sampled every 50 ms (the
//     attack is cut short as soon as it passes, to spare the machine);
//   - the canary kept working, and every reply it got carried its own tag;
//   - once the scenario's peers are gone, the process's descriptors
//     (/proc/PID/fd) and goroutines (/debug/pprof/goroutine on the admin
//     port) come back to their baseline, within a slack of 8;
//   - no byte of one session reached another (every session sends
//     "tag:<id>" first; the test backends prefix every reply with the tag
//     they currently hold, so a frame carrying another tag is a leak);
//   - the race detector reported nothing and nothing panicked (the
//     child's stderr is scanned);
//
// plus what each scenario is about (the backend connection was closed,
// connections over the limit were refused promptly, ...).
//
// TestMain builds ./cmd/wsgate with -race into a temporary directory and
// removes it at the end (set WSGATE_HOSTILE_BIN to test a binary built
// elsewhere instead, an older commit say). Each scenario starts its own
// gateway process on free loopback ports (-listen, -admin for /healthz and
// /debug/pprof, -log-format json) with a YAML configuration
// (docs/config.md): group "honest" is the default route, where the canary
// lives; group "evil", routed at /evil/, holds the scenario's backends
// with their settings (the release policy is the backend's
// release_policy there, since -release-policy is ignored with -config).
// The connection flood runs the gateway under RLIMIT_NOFILE 256, through
// prlimit(1) or, without it, a re-exec of the test binary that calls
// setrlimit. Stderr is kept (head and tail, bounded) for failure
// messages, and the process is stopped (SIGTERM, then SIGKILL) when the
// scenario ends; it also dies with the test binary (Pdeathsig). Each
// scenario's attack is bounded by its own 20 s deadline: a hang is
// reported, and its sockets closed, instead of eating the suite.
//
// The tests read as a report:
//
//	TestHostileBackend/overflowing_header/{after_handshake,idle,leased}
//	TestHostileBackend/oversized_frame/{endless_8GiB,just_over_limit}
//	TestHostileBackend/endless_frames_unread_client
//	TestHostileBackend/ping_flood/{unread_leased,unread_idle,idle}
//	TestHostileBackend/hung_upgrade
//	TestHostileBackend/pause_mid_fragment/{default,reset}
//	TestHostileBackend/late_frames/{default,reset}
//	TestHostileClient/ping_flood_unread
//	TestHostileClient/data_flood_unread
//	TestHostileClient/connection_flood/{max_conns_50,default_max_conns}
//	TestHostileClient/abandoned_handshakes
//	TestHostileClient/garbage_after_upgrade
//	TestHostileControl (no attack: the harness itself must pass)
//	TestHarnessNofileLimit (both ways of lowering the child's descriptor limit)
//
// Run one scenario with, for example:
//
//	go test -race -run 'TestHostileBackend/overflowing_header' ./internal/hostile
//	go test -race -run 'TestHostileClient/ping_flood' -v ./internal/hostile
//
// With -v each scenario logs its baseline, peak memory and the canary's
// round trips. The package has only tests; nothing here is imported.
package hostile
