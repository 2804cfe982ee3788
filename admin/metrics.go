package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/internal/buildinfo"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// Every metric wsgate exports is read from an atomic at scrape time by the
// collectors below (the session-end ones by Recorder): the loops never
// update a metric per message and nothing here takes a lock they could
// wait on.

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// serverCollector exports server.Stats and the per-shard counts.
type serverCollector struct {
	a *Admin

	accepted, connsOpen, sessionsOpen, upgraded *prometheus.Desc
	frames, bytes, refused, closed, timeouts    *prometheus.Desc
	shardSessions, shardWaiting                 *prometheus.Desc
	draining, accessLines                       *prometheus.Desc
	acceptEMFILE, enrollFailures, panics        *prometheus.Desc
	logDropped, failed, buildInfo               *prometheus.Desc
	pausedNow, pauses, pausedSeconds, stalls    *prometheus.Desc
	tlsHandshakes, tlsFailures, tlsRunning      *prometheus.Desc
	tlsWaits                                    *prometheus.Desc
	tlsReadErrors, tlsReloads, tlsExpiry        *prometheus.Desc
	authFailures, jwtReloads                    *prometheus.Desc
	proxyFailures, ipRefused, ipTracked         *prometheus.Desc
	ipUntracked                                 *prometheus.Desc
}

func newServerCollector(a *Admin) *serverCollector {
	return &serverCollector{
		a:              a,
		accepted:       desc("wsgate_connections_accepted_total", "Client TCP connections accepted."),
		connsOpen:      desc("wsgate_connections_open", "Client TCP connections open (handshaking or upgraded)."),
		sessionsOpen:   desc("wsgate_sessions_open", "Upgraded WebSocket sessions open."),
		upgraded:       desc("wsgate_sessions_total", "Sessions that completed the WebSocket handshake."),
		frames:         desc("wsgate_frames_total", "Frames from clients (in) and to clients (out), data and control.", "direction"),
		bytes:          desc("wsgate_payload_bytes_total", "Payload bytes from clients (in) and to clients (out), every frame.", "direction"),
		refused:        desc("wsgate_handshake_failures_total", "Upgrade requests answered with an HTTP error, by status (other: any status not counted one by one).", "status"),
		closed:         desc("wsgate_connections_closed_total", "Client connections that ended, by their first close reason (handshake refusals included).", "reason"),
		timeouts:       desc("wsgate_close_timeouts_total", "Sessions cut because the client never answered our close frame."),
		shardSessions:  desc("wsgate_shard_sessions", "Upgraded sessions open, per shard (event loop).", "shard"),
		shardWaiting:   desc("wsgate_shard_waiting", "Sessions waiting for a backend connection, per shard.", "shard"),
		draining:       desc("wsgate_shutting_down", "1 once the gateway refuses new sessions because it is stopping."),
		accessLines:    desc("wsgate_access_log_lines_total", "Access log lines written, and normal session ends left out by -access-log-sample (skipped).", "result"),
		acceptEMFILE:   desc("wsgate_accept_out_of_descriptors_total", "Accepts that found the process out of descriptors (a waiting connection was refused to make room)."),
		enrollFailures: desc("wsgate_accept_handoff_failures_total", "Accepted client connections no event loop took."),
		panics:         desc("wsgate_callback_panics_total", "Event-loop callbacks that panicked (each a bug; its connection was closed)."),
		logDropped:     desc("wsgate_log_lines_dropped_total", "Log lines dropped because the log output did not take them in time."),
		buildInfo:      desc("wsgate_build_info", "Constant 1, labelled with the version, VCS revision and Go version of this binary.", "version", "revision", "goversion"),
		failed:         desc("wsgate_server_failed", "1 once the server failed (its event engine stopped by itself): the process exits."),
		pausedNow:      desc("wsgate_paused_connections", "Connections (client and backend) not read right now: their peer's queue is full (backpressure)."),
		pauses:         desc("wsgate_pauses_total", "Times a connection was paused for backpressure."),
		pausedSeconds:  desc("wsgate_paused_seconds_total", "Time connections spent paused, counted when they resume or close."),
		stalls:         desc("wsgate_stalls_total", "Paused connections whose peer did not drain for the stall timeout (their session was closed)."),
		tlsHandshakes:  desc("wsgate_tls_handshakes_total", "TLS handshakes completed on the TLS listener."),
		tlsFailures:    desc("wsgate_tls_handshake_failures_total", "TLS handshakes that failed, by reason (timeout, closed, not_tls, client_cert, version, other).", "reason"),
		tlsWaits:       desc("wsgate_tls_handshake_waits_total", "Times the TLS listener waited for a handshake to end before accepting again (-tls-handshakes were running; new clients wait in the listen queue)."),
		tlsRunning:     desc("wsgate_tls_handshakes_running", "TLS handshakes running now (bounded by -tls-handshakes)."),
		tlsReadErrors:  desc("wsgate_tls_read_errors_total", "TLS sessions whose records failed after the handshake (a bad or oversized record, an alert)."),
		tlsReloads:     desc("wsgate_tls_certificate_reloads_total", "Certificate reloads (files changed, SIGHUP, the reload action), by result.", "result"),
		tlsExpiry:      desc("wsgate_tls_certificate_expiry_seconds", "Unix time the first certificate in force expires."),
		authFailures:   desc("wsgate_auth_failures_total", "Upgrades refused (401) for their token, by reason: missing, malformed, algorithm, signature, expired, not_yet_valid, audience, issuer.", "reason"),
		jwtReloads:     desc("wsgate_jwt_key_reloads_total", "Reloads of the -jwt-key file, by result.", "result"),
		proxyFailures:  desc("wsgate_proxy_protocol_failures_total", "Connections refused for their PROXY header: untrusted (not from -proxy-protocol-from), missing, malformed.", "reason"),
		ipRefused:      desc("wsgate_ip_limit_refusals_total", "Connections refused by the per-IP limits: conns (-max-conns-per-ip), rate (-session-rate-per-ip).", "reason"),
		ipTracked:      desc("wsgate_ip_limit_tracked", "Client addresses the per-IP limiter tracks now."),
		ipUntracked:    desc("wsgate_ip_limit_untracked_total", "Connections admitted without per-IP tracking because the limiter's table was full (an address spray)."),
	}
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accepted, c.connsOpen, c.sessionsOpen, c.upgraded, c.frames, c.bytes,
		c.refused, c.closed, c.timeouts, c.shardSessions, c.shardWaiting, c.draining, c.accessLines,
		c.acceptEMFILE, c.enrollFailures, c.panics, c.logDropped, c.failed, c.buildInfo,
		c.pausedNow, c.pauses, c.pausedSeconds, c.stalls,
		c.tlsHandshakes, c.tlsFailures, c.tlsRunning, c.tlsWaits, c.tlsReadErrors, c.tlsReloads, c.tlsExpiry,
		c.authFailures, c.jwtReloads, c.proxyFailures, c.ipRefused, c.ipTracked, c.ipUntracked} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	if srv := c.a.o.Server; srv != nil {
		st := srv.Stats()
		counter(c.accepted, st.Accepted.Load())
		gauge(c.connsOpen, st.Open.Load())
		gauge(c.sessionsOpen, st.Sessions.Load())
		counter(c.upgraded, st.Upgraded.Load())
		counter(c.frames, st.FramesIn(), "in")
		counter(c.frames, st.FramesOut(), "out")
		counter(c.bytes, st.BytesIn(), "in")
		counter(c.bytes, st.BytesOut(), "out")
		for _, status := range server.RefusalStatuses() {
			counter(c.refused, st.Refused(status), statusLabel(status))
		}
		counter(c.refused, st.Refused(0), statusLabel(0))
		for i, name := range reasonNames {
			if i == int(server.ReasonNone) {
				continue
			}
			counter(c.closed, st.Closed(server.CloseReason(i)), name)
		}
		counter(c.timeouts, st.CloseTimeouts.Load())
		counter(c.acceptEMFILE, st.AcceptEMFILE.Load())
		counter(c.enrollFailures, st.EnrollFailures.Load())
		counter(c.panics, st.Panics.Load())
		gauge(c.failed, b2i(srv.Err() != nil))
		gauge(c.pausedNow, srv.PausedNow())
		counter(c.pauses, st.Pauses.Load())
		ch <- prometheus.MustNewConstMetric(c.pausedSeconds, prometheus.CounterValue, float64(st.PausedNanos.Load())/1e9)
		counter(c.stalls, st.Stalls.Load())
		gauge(c.draining, b2i(srv.ShuttingDown()))
		if srv.Config().ProxyProtocol {
			for i, name := range server.ProxyFailureNames() {
				counter(c.proxyFailures, st.ProxyFailures(server.ProxyFailure(i)), name)
			}
		}
		if cfg := srv.Config(); cfg.MaxConnsPerIP > 0 || cfg.SessionRatePerIP > 0 {
			ip := srv.IPLimits()
			counter(c.ipRefused, ip.RefusedConns, "conns")
			counter(c.ipRefused, ip.RefusedRate, "rate")
			gauge(c.ipTracked, ip.Entries)
			counter(c.ipUntracked, ip.Untracked)
		}
		if srv.TLSAddr() != "" {
			counter(c.tlsHandshakes, st.TLSHandshakes.Load())
			for i, name := range server.TLSFailureNames() {
				counter(c.tlsFailures, st.TLSFailures(server.TLSFailure(i)), name)
			}
			gauge(c.tlsRunning, srv.TLSHandshakesRunning())
			counter(c.tlsWaits, st.TLSHandshakeWaits.Load())
			counter(c.tlsReadErrors, st.TLSReadErrors.Load())
		}
		for _, si := range srv.Shards() {
			gauge(c.shardSessions, si.Sessions, strconv.Itoa(si.Index))
		}
	}
	if p := c.a.o.Pool; p != nil {
		for _, sh := range p.Shards() {
			gauge(c.shardWaiting, sh.Waiting.Load(), strconv.Itoa(sh.Index))
		}
	}
	if certs := c.a.o.ListenerTLS; certs != nil {
		counter(c.tlsReloads, certs.Reloads.Load(), "ok")
		counter(c.tlsReloads, certs.ReloadFailures.Load(), "failed")
		gauge(c.tlsExpiry, certs.NotAfter().Unix())
	}
	if p := c.a.o.Proxy; p != nil {
		for reason, n := range p.AuthFailures() {
			counter(c.authFailures, n, reason)
		}
	}
	if v := c.a.o.JWT; v != nil {
		counter(c.jwtReloads, v.Reloads.Load(), "ok")
		counter(c.jwtReloads, v.ReloadFailures.Load(), "failed")
	}
	bi := buildinfo.Get()
	gauge(c.buildInfo, 1, bi.Version, bi.Revision, bi.GoVersion)
	if fn := c.a.o.LogDropped; fn != nil {
		counter(c.logDropped, fn())
	}
	if l := c.a.o.AccessLog; l != nil {
		counter(c.accessLines, l.Written.Load(), "written")
		counter(c.accessLines, l.Skipped.Load(), "skipped")
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// poolCollector exports every backend's settings, state and counters, and
// its connections per shard.
type poolCollector struct {
	a *Admin

	target, max, weight, conns                         *prometheus.Desc
	leases, releases, enrolled, dialFail, fail, closed *prometheus.Desc
	stray, healthy, backedOff, backoffUntil            *prometheus.Desc
	paused, drained, removed, info, shardConns         *prometheus.Desc
	atMax, maxReached                                  *prometheus.Desc
}

func newPoolCollector(a *Admin) *poolCollector {
	const b = "backend"
	return &poolCollector{
		a:            a,
		target:       desc("wsgate_backend_target", "Idle connections the pool keeps ready for the backend, all shards (min idle).", b),
		max:          desc("wsgate_backend_max", "Bound on the backend's connections in any state, all shards (0: none).", b),
		atMax:        desc("wsgate_backend_at_max", "1 while the backend has max connections: new dials wait, sessions past it wait and may get 1013.", b),
		maxReached:   desc("wsgate_backend_max_reached_total", "Dials not made because the backend had max connections.", b),
		weight:       desc("wsgate_backend_weight", "The backend's balancer weight.", b),
		conns:        desc("wsgate_backend_connections", "The backend's connections by state (dialing, idle, leased, releasing, closing) and their sum (total, bounded by max).", b, "state"),
		leases:       desc("wsgate_backend_leases_total", "Connections leased to sessions.", b),
		releases:     desc("wsgate_backend_releases_total", "Connections that went back to idle after a session.", b),
		enrolled:     desc("wsgate_backend_enrolled_total", "Connections dialed, upgraded and enrolled into the pool.", b),
		dialFail:     desc("wsgate_backend_dial_failures_total", "Dials or handshakes to the backend that failed.", b),
		fail:         desc("wsgate_backend_failures_total", "Connections lost: closed by the backend, ping timeout, protocol error.", b),
		closed:       desc("wsgate_backend_closed_total", "Connections closed for any reason.", b),
		stray:        desc("wsgate_backend_stray_frames_total", "Data frames the backend sent while no session held the connection (dropped).", b),
		healthy:      desc("wsgate_backend_healthy", "1 while the backend's last dial succeeded.", b),
		backedOff:    desc("wsgate_backend_backed_off", "1 while dials to the backend wait for their backoff to end.", b),
		backoffUntil: desc("wsgate_backend_backoff_until_seconds", "Unix time the backend's dial backoff ends (0: none).", b),
		paused:       desc("wsgate_backend_paused", "1 while an operator paused the backend (no new leases; drain also pauses).", b),
		drained:      desc("wsgate_backend_drained", "1 while an operator drains the backend (paused, connections close as sessions end).", b),
		removed:      desc("wsgate_backend_removed", "1 once the backend left the configuration.", b),
		info:         desc("wsgate_backend_info", "Constant 1, labelled with the backend's id, group, release policy and state.", b, "id", "group", "policy", "state"),
		shardConns:   desc("wsgate_shard_backend_connections", "A backend's connections in one shard, by state.", "shard", b, "state"),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.target, c.max, c.weight, c.conns, c.leases, c.releases, c.enrolled,
		c.dialFail, c.fail, c.closed, c.stray, c.healthy, c.backedOff, c.backoffUntil, c.paused, c.drained,
		c.removed, c.info, c.shardConns, c.atMax, c.maxReached} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.a.o.Pool
	if p == nil {
		return
	}
	now := time.Now()
	shards := len(p.Shards())
	for _, b := range p.Backends() {
		c.collectBackend(ch, b, shards, now)
	}
}

func (c *poolCollector) collectBackend(ch chan<- prometheus.Metric, b *pool.Backend, shards int, now time.Time) {
	st := b.Settings()
	url := st.URL
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), url)
	}
	gauge(c.target, int64(st.Target), url)
	gauge(c.max, int64(st.Max), url)
	gauge(c.atMax, b2i(b.AtMax()), url)
	counter(c.maxReached, b.MaxReached.Load())
	gauge(c.weight, int64(st.Weight), url)
	k := &b.Counters
	gauge(c.conns, k.Dialing.Load(), url, "dialing")
	gauge(c.conns, k.Idle.Load(), url, "idle")
	gauge(c.conns, k.Leased.Load(), url, "leased")
	gauge(c.conns, k.Releasing.Load(), url, "releasing")
	gauge(c.conns, k.Closing.Load(), url, "closing")
	gauge(c.conns, k.Total.Load(), url, "total")
	counter(c.leases, k.Leases.Load())
	counter(c.releases, k.Releases.Load())
	counter(c.enrolled, k.Enrolled.Load())
	counter(c.dialFail, k.DialFailures.Load())
	counter(c.fail, k.Failures.Load())
	counter(c.closed, k.Closed.Load())
	counter(c.stray, k.Stray.Load())
	gauge(c.healthy, b2i(b.Healthy()), url)
	off, until := b.BackedOff(now)
	gauge(c.backedOff, b2i(off), url)
	var untilSec float64
	if off {
		untilSec = float64(until.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.backoffUntil, prometheus.GaugeValue, untilSec, url)
	gauge(c.paused, b2i(b.Paused()), url)
	gauge(c.drained, b2i(b.Drained()), url)
	gauge(c.removed, b2i(b.Removed()), url)
	gauge(c.info, 1, url, strconv.Itoa(b.ID), b.Group(), st.Policy.String(), backendState(b))
	for i := 0; i < shards; i++ {
		s := b.InShard(i)
		shard := strconv.Itoa(i)
		gauge(c.shardConns, s.Dialing.Load(), shard, url, "dialing")
		gauge(c.shardConns, s.Idle.Load(), shard, url, "idle")
		gauge(c.shardConns, s.Leased.Load(), shard, url, "leased")
		gauge(c.shardConns, s.Releasing.Load(), shard, url, "releasing")
	}
}

// configCollector exports the configuration's version and the result of
// the last reload, from Options.ConfigStatus.
type configCollector struct {
	a                          *Admin
	version, success, reloadAt *prometheus.Desc
}

func newConfigCollector(a *Admin) *configCollector {
	return &configCollector{
		a:        a,
		version:  desc("wsgate_config_version", "Version of the configuration in use."),
		success:  desc("wsgate_config_last_reload_success", "1 if the last configuration reload (or the initial load) succeeded, 0 if it was rejected."),
		reloadAt: desc("wsgate_config_last_reload_timestamp_seconds", "Unix time of the last reload attempt (0: none yet)."),
	}
}

func (c *configCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.version
	ch <- c.success
	ch <- c.reloadAt
}

func (c *configCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.configStatus()
	ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(st.Version))
	ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, float64(b2i(st.LastReload == ReloadOK)))
	var at float64
	if !st.LastReloadAt.IsZero() {
		at = float64(st.LastReloadAt.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.reloadAt, prometheus.GaugeValue, at)
}
