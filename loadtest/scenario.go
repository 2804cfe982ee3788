package loadtest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scenario is one load shape. Flags given next to -scenario override its
// fields one by one.
type Scenario struct {
	Name        string        `json:"name"`
	Description string        `json:"-"`
	Backends    int           `json:"backends"`
	Conns       int           `json:"conns"`
	Size        int           `json:"size"`            // bytes per message
	Binary      bool          `json:"binary"`          // binary instead of text messages
	Rate        float64       `json:"rate"`            // messages per second per session; 0 = one echo each, then idle
	DialRate    float64       `json:"dial_rate"`       // sessions opened per second; 0 = all at once
	Warmup      time.Duration `json:"warmup_ns"`       // after all sessions are open, before measuring
	Duration    time.Duration `json:"duration_ns"`     // the measured window
	PoolSize    int           `json:"pool_size"`       // per backend for pooled proxies; 0 = derived from Conns
	PoolMargin  float64       `json:"pool_margin"`     // extra share over ceil(conns/backends) when derived
	Senders     int           `json:"senders"`         // sender goroutines in the load generator
	Settle      time.Duration `json:"settle_ns"`       // longest wait for the processes to go quiet before the baseline
	ConnectWait time.Duration `json:"connect_wait_ns"` // longest wait for all sessions to open
}

// TargetRate is the total message rate the scenario asks for.
func (s Scenario) TargetRate() float64 { return float64(s.Conns) * s.Rate }

// poolSize is the per-backend pool for wsgate and the goroutine proxy:
// enough for every session plus a margin, unless set.
func (s Scenario) poolSize() int {
	if s.PoolSize > 0 {
		return s.PoolSize
	}
	per := (s.Conns + s.Backends - 1) / max(s.Backends, 1)
	return per + max(8, int(float64(per)*s.PoolMargin))
}

// base holds the values every scenario starts from.
var base = Scenario{
	Backends:    3,
	Conns:       3000,
	Size:        1024,
	Rate:        3,
	Warmup:      5 * time.Second,
	Duration:    20 * time.Second,
	PoolMargin:  0.05,
	Senders:     2,
	Settle:      15 * time.Second,
	ConnectWait: 120 * time.Second,
}

// Scenarios are the named load shapes.
var Scenarios = map[string]Scenario{
	"seed-table": with(base, func(s *Scenario) {
		s.Name = "seed-table"
		s.Description = "the field report's table: 3 backends, 3,000 sessions opened at once, 1 KiB text at 100 msg/s each (300K msg/s; a 2-core machine reports what it reaches)"
		s.Rate = 100
	}),
	"seed-table-scaled": with(base, func(s *Scenario) {
		s.Name = "seed-table-scaled"
		s.Description = "seed-table at 3 msg/s per session (9,000 msg/s), which 2 cores can hold"
		s.Rate = 3
	}),
	"density": with(base, func(s *Scenario) {
		s.Name = "density"
		s.Description = "9,000 idle sessions over 3 backends, one echo each: memory per session"
		s.Conns = 9000
		s.Rate = 0
		s.Warmup = 2 * time.Second
		s.Duration = 10 * time.Second
	}),
	"echo-256": with(base, func(s *Scenario) {
		s.Name = "echo-256"
		s.Description = "the stress report's 256-byte JSON echo at 5,000 sessions, 24 msg/s each (its 120K msg/s)"
		s.Conns = 5000
		s.Size = 256
		s.Rate = 24
	}),
}

func with(s Scenario, f func(*Scenario)) Scenario { f(&s); return s }

// ScenarioNames lists the named scenarios, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validate refuses shapes the machine or the tool cannot run.
func (s Scenario) validate() error {
	var errs []string
	if s.Conns <= 0 {
		errs = append(errs, "conns must be positive")
	}
	if s.Backends <= 0 {
		errs = append(errs, "backends must be positive")
	}
	if s.Size < MinMessageSize {
		errs = append(errs, fmt.Sprintf("size must be at least %d bytes", MinMessageSize))
	}
	if s.Rate < 0 || s.DialRate < 0 {
		errs = append(errs, "rates cannot be negative")
	}
	if s.Duration <= 0 {
		errs = append(errs, "duration must be positive")
	}
	if s.Warmup < 0 {
		errs = append(errs, "warmup cannot be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("loadtest: scenario %s: %s", s.Name, strings.Join(errs, "; "))
	}
	return nil
}

// fdBudget checks the open-file limits before anything starts: the load
// generator holds one descriptor per session, a proxy holds the client's
// and a backend's (a pooled proxy holds its whole pool). Past the limit
// the run would fail halfway with EMFILE; better to say so now.
func (s Scenario) fdBudget(kind string, limit int) error {
	const slack = 128 // listeners, logs, pipes, the runtime
	if need := s.Conns + slack; need > limit {
		return fmt.Errorf("loadtest: %d sessions need about %d open files in the load generator; the limit is %d", s.Conns, need, limit)
	}
	var proxy int
	switch kind {
	case KindWsgate, KindGoroutine:
		proxy = s.Conns + s.poolSize()*s.Backends + slack
	case KindNginx:
		// Each worker holds its clients and their upstreams; reuseport
		// spreads clients, but one worker may still get most of them.
		proxy = 2*s.Conns + slack
	default:
		return nil
	}
	if proxy > limit {
		return fmt.Errorf("loadtest: %s with %d sessions and pool %d x %d backends needs about %d open files; the limit is %d (lower -conns or -pool-size)",
			kind, s.Conns, s.poolSize(), s.Backends, proxy, limit)
	}
	return nil
}
