package admin

import (
	"runtime"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// PoolsView is the SHOW POOLS view: every backend with its totals and its
// part in each shard, and every shard with its sessions and connections.
type PoolsView struct {
	Time     time.Time     `json:"time"`
	Ready    bool          `json:"ready"`
	Reason   string        `json:"ready_reason,omitempty"` // why not ready
	Config   ConfigStatus  `json:"config"`
	Backends []BackendView `json:"backends"`
	Shards   []ShardView   `json:"shards"`
}

// BackendView is one backend, all shards together.
type BackendView struct {
	ID     int    `json:"id"`
	URL    string `json:"url"`
	Group  string `json:"group"` // the backend group routes point at
	Policy string `json:"policy"`
	// State is "active", "paused" (operator: no new leases), "draining"
	// (operator drain, or draining in the configuration) or "removed"
	// (left the configuration; its connections close as sessions end).
	State        string     `json:"state"`
	Healthy      bool       `json:"healthy"`    // the last dial succeeded
	BackedOff    bool       `json:"backed_off"` // dials wait until BackoffUntil
	BackoffUntil *time.Time `json:"backoff_until,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	Paused       bool       `json:"paused"`
	Drained      bool       `json:"drained"`
	Removed      bool       `json:"removed"`
	Target       int        `json:"target"`      // idle connections to keep ready (min idle)
	Max          int        `json:"max"`         // bound on all connections; 0: none
	AtMax        bool       `json:"at_max"`      // the last dial was not made: the backend has max connections (sessions past it wait)
	MaxReached   int64      `json:"max_reached"` // dials not made at max, since start
	Weight       int        `json:"weight"`
	ConnCounts
	Shards []ShardConnsView `json:"shards"`
}

// ConnCounts are connection counts and counters, of a backend or of one
// backend in one shard.
type ConnCounts struct {
	Dialing      int64 `json:"dialing"`
	Idle         int64 `json:"idle"`
	Leased       int64 `json:"leased"` // = sessions bound to this backend (PgBouncer's cl_active / sv_active)
	Releasing    int64 `json:"releasing"`
	Closing      int64 `json:"closing"`
	Total        int64 `json:"total"` // dialing+idle+leased+releasing+closing, the bounded number
	Leases       int64 `json:"leases"`
	Releases     int64 `json:"releases"`
	Enrolled     int64 `json:"enrolled"`
	DialFailures int64 `json:"dial_failures"`
	Failures     int64 `json:"failures"`
	Closed       int64 `json:"closed"`
	Stray        int64 `json:"stray"`
}

// ShardConnsView is one backend's counts in one shard.
type ShardConnsView struct {
	Shard int `json:"shard"`
	ConnCounts
}

// ShardView is one shard (event loop).
type ShardView struct {
	Shard    int                `json:"shard"`
	Sessions int64              `json:"sessions"` // upgraded sessions open on it
	Waiting  int64              `json:"waiting"`  // sessions waiting for a backend connection (cl_waiting)
	Backends []ShardBackendView `json:"backends"`
}

// ShardBackendView is one backend's connections in a shard, as the shard
// row of the pools view shows them.
type ShardBackendView struct {
	ID        int    `json:"id"`
	URL       string `json:"url"`
	Dialing   int64  `json:"dialing"`
	Idle      int64  `json:"idle"`
	Leased    int64  `json:"leased"`
	Releasing int64  `json:"releasing"`
}

func readCounts(c *pool.Counters) ConnCounts {
	return ConnCounts{
		Dialing: c.Dialing.Load(), Idle: c.Idle.Load(), Leased: c.Leased.Load(),
		Releasing: c.Releasing.Load(), Closing: c.Closing.Load(), Total: c.Total.Load(),
		Leases: c.Leases.Load(), Releases: c.Releases.Load(), Enrolled: c.Enrolled.Load(),
		DialFailures: c.DialFailures.Load(), Failures: c.Failures.Load(), Closed: c.Closed.Load(),
		Stray: c.Stray.Load(),
	}
}

func backendState(b *pool.Backend) string {
	switch {
	case b.Removed():
		return "removed"
	case b.Drained() || b.Settings().Draining:
		return "draining"
	case b.Paused():
		return "paused"
	}
	return "active"
}

// viewBackend reads one backend's atomics.
func viewBackend(b *pool.Backend, shards int, now time.Time) BackendView {
	st := b.Settings()
	v := BackendView{
		ID: b.ID, URL: st.URL, Group: b.Group(), Policy: st.Policy.String(), State: backendState(b),
		Healthy: b.Healthy(), LastError: b.LastError(),
		Paused: b.Paused(), Drained: b.Drained(), Removed: b.Removed(),
		Target: st.Target, Max: st.Max, AtMax: b.AtMax(), MaxReached: b.MaxReached.Load(), Weight: st.Weight,
		ConnCounts: readCounts(&b.Counters),
	}
	if off, until := b.BackedOff(now); off {
		v.BackedOff, v.BackoffUntil = true, &until
	}
	v.Shards = make([]ShardConnsView, shards)
	for i := range v.Shards {
		v.Shards[i] = ShardConnsView{Shard: i, ConnCounts: readCounts(b.InShard(i))}
	}
	return v
}

// pools reads the whole pools view.
func (a *Admin) pools() PoolsView {
	now := time.Now()
	v := PoolsView{Time: now, Config: a.configStatus()}
	v.Ready, v.Reason = a.ready()
	var shards []*pool.ShardPool
	if a.o.Pool != nil {
		shards = a.o.Pool.Shards()
		for _, b := range a.o.Pool.Backends() {
			v.Backends = append(v.Backends, viewBackend(b, len(shards), now))
		}
	}
	sessions := map[int]int64{}
	n := len(shards)
	if a.o.Server != nil {
		for _, si := range a.o.Server.Shards() {
			sessions[si.Index] = si.Sessions
			n = max(n, si.Index+1)
		}
	}
	for i := 0; i < n; i++ {
		sv := ShardView{Shard: i, Sessions: sessions[i]}
		if i < len(shards) {
			sv.Waiting = shards[i].Waiting.Load()
		}
		for _, b := range v.Backends {
			if i < len(b.Shards) {
				c := b.Shards[i]
				sv.Backends = append(sv.Backends, ShardBackendView{ID: b.ID, URL: b.URL,
					Dialing: c.Dialing, Idle: c.Idle, Leased: c.Leased, Releasing: c.Releasing})
			}
		}
		v.Shards = append(v.Shards, sv)
	}
	return v
}

// StatsView is the server's numbers for the status page: the same atomics
// /metrics exports, as one JSON object.
type StatsView struct {
	Time                time.Time                   `json:"time"`
	UptimeSeconds       float64                     `json:"uptime_seconds"`
	Listen              string                      `json:"listen,omitempty"`
	ConnectionsAccepted int64                       `json:"connections_accepted"`
	ConnectionsOpen     int64                       `json:"connections_open"`
	SessionsOpen        int64                       `json:"sessions_open"`
	SessionsUpgraded    int64                       `json:"sessions_upgraded"`
	FramesIn            int64                       `json:"frames_in"`  // from clients
	FramesOut           int64                       `json:"frames_out"` // to clients
	BytesIn             int64                       `json:"bytes_in"`
	BytesOut            int64                       `json:"bytes_out"`
	CloseTimeouts       int64                       `json:"close_timeouts"`
	ClosedByReason      map[string]int64            `json:"closed_by_reason"`   // every connection, first reason
	HandshakeFailures   map[string]int64            `json:"handshake_failures"` // by HTTP status
	SessionsEnded       map[string]int64            `json:"sessions_ended"`     // upgraded sessions, by outcome
	CloseCodes          map[string]map[string]int64 `json:"close_codes"`        // by side, then code
	Waiting             int64                       `json:"waiting"`            // sessions waiting for a backend, all shards
	Paused              int64                       `json:"paused"`             // connections not read right now (backpressure)
	Pauses              int64                       `json:"pauses"`             // times a connection was paused
	PausedSeconds       float64                     `json:"paused_seconds"`     // time spent paused, all connections
	Stalls              int64                       `json:"stalls"`             // sessions closed for not draining
	TLSListen           string                      `json:"tls_listen,omitempty"`
	TLSHandshakes       int64                       `json:"tls_handshakes"`
	TLSFailures         map[string]int64            `json:"tls_handshake_failures,omitempty"` // by reason
	TLSReadErrors       int64                       `json:"tls_read_errors"`
	TLSCertExpiry       time.Time                   `json:"tls_certificate_expiry,omitzero"`
	Goroutines          int                         `json:"goroutines"`
	AccessLogWritten    int64                       `json:"access_log_written"`
	AccessLogSkipped    int64                       `json:"access_log_skipped"`
}

func statusLabel(st int) string {
	if st == 0 {
		return "other"
	}
	return strconv.Itoa(st)
}

// stats reads the status page's numbers.
func (a *Admin) stats() StatsView {
	now := time.Now()
	v := StatsView{Time: now, UptimeSeconds: now.Sub(a.started).Seconds(), Goroutines: runtime.NumGoroutine(),
		ClosedByReason: map[string]int64{}, HandshakeFailures: map[string]int64{}}
	if srv := a.o.Server; srv != nil {
		st := srv.Stats()
		v.Listen = a.listen
		v.ConnectionsAccepted = st.Accepted.Load()
		v.ConnectionsOpen = st.Open.Load()
		v.SessionsOpen = st.Sessions.Load()
		v.SessionsUpgraded = st.Upgraded.Load()
		v.FramesIn, v.FramesOut = st.FramesIn(), st.FramesOut()
		v.BytesIn, v.BytesOut = st.BytesIn(), st.BytesOut()
		v.CloseTimeouts = st.CloseTimeouts.Load()
		v.Paused = srv.PausedNow()
		v.Pauses, v.PausedSeconds, v.Stalls = st.Pauses.Load(), float64(st.PausedNanos.Load())/1e9, st.Stalls.Load()
		if v.TLSListen = srv.TLSAddr(); v.TLSListen != "" {
			v.TLSHandshakes, v.TLSReadErrors = st.TLSHandshakes.Load(), st.TLSReadErrors.Load()
			v.TLSFailures = map[string]int64{}
			for i, name := range server.TLSFailureNames() {
				if n := st.TLSFailures(server.TLSFailure(i)); n > 0 {
					v.TLSFailures[name] = n
				}
			}
		}
		for i, name := range reasonNames {
			if n := st.Closed(server.CloseReason(i)); n > 0 {
				v.ClosedByReason[name] = n
			}
		}
		for _, status := range server.RefusalStatuses() {
			if n := st.Refused(status); n > 0 {
				v.HandshakeFailures[statusLabel(status)] = n
			}
		}
		if n := st.Refused(0); n > 0 {
			v.HandshakeFailures[statusLabel(0)] = n
		}
	}
	if certs := a.o.ListenerTLS; certs != nil {
		v.TLSCertExpiry = certs.NotAfter()
	}
	if a.o.Pool != nil {
		for _, sh := range a.o.Pool.Shards() {
			v.Waiting += sh.Waiting.Load()
		}
	}
	if r := a.o.Recorder; r != nil {
		v.SessionsEnded = r.Outcomes()
		v.CloseCodes = r.CloseCodes()
	}
	if l := a.o.AccessLog; l != nil {
		v.AccessLogWritten, v.AccessLogSkipped = l.Written.Load(), l.Skipped.Load()
	}
	return v
}
