package pool

import (
	"cmp"
	"fmt"
	"math/rand/v2"
)

// Balancing: which backend of a group a new session's connection comes
// from, among the backends that take leases and have an idle connection
// in the session's shard. A backend whose dials fail (unhealthy) is left
// out while a healthy one has an idle connection; its idle connections
// are still used when nothing else is left, since each is checked by its
// own pings. One small type per policy, as Caddy's reverse proxy has.

// Balancer picks one of the candidates (never empty); rng breaks ties.
// Loop-only (rng is the shard's).
type Balancer interface {
	Pick(candidates []*shardBackend, rng *rand.Rand) *shardBackend
}

// BalancerNames lists the policies, the default first.
var BalancerNames = []string{"least-leased", "random", "most-idle"}

// ParseBalancer reads a policy name ("" is the default).
func ParseBalancer(name string) (Balancer, error) {
	switch name {
	case "", "least-leased":
		return LeastLeased{}, nil
	case "random":
		return WeightedRandom{}, nil
	case "most-idle":
		return MostIdle{}, nil
	}
	return nil, fmt.Errorf("%w: balance %q: want least-leased, random or most-idle", ErrSettings, name)
}

// LeastLeased picks the backend with the fewest sessions for its weight
// (leased connections, all shards, divided by the weight), ties at random:
// load follows the weights whatever the session lengths. The default.
type LeastLeased struct{}

func (LeastLeased) Pick(cands []*shardBackend, rng *rand.Rand) *shardBackend {
	return best(cands, rng, func(a, b *shardBackend) int {
		// leased/weight, compared without division
		return cmp.Compare(a.backend.Leased.Load()*int64(b.backend.Settings().Weight), b.backend.Leased.Load()*int64(a.backend.Settings().Weight))
	})
}

// best is the candidate that compare ranks first (negative: a before b),
// ties broken at random.
func best(cands []*shardBackend, rng *rand.Rand, compare func(a, b *shardBackend) int) *shardBackend {
	var top *shardBackend
	ties := 0
	for _, s := range cands {
		if top == nil {
			top, ties = s, 1
			continue
		}
		switch c := compare(s, top); {
		case c < 0:
			top, ties = s, 1
		case c == 0:
			ties++
			if rng.IntN(ties) == 0 {
				top = s
			}
		}
	}
	return top
}

// WeightedRandom picks at random in proportion to the weights.
type WeightedRandom struct{}

func (WeightedRandom) Pick(cands []*shardBackend, rng *rand.Rand) *shardBackend {
	var pick *shardBackend
	sum := 0
	for _, s := range cands { // weighted reservoir sampling
		w := s.backend.Settings().Weight
		sum += w
		if rng.IntN(sum) < w {
			pick = s
		}
	}
	return pick
}

// MostIdle picks the backend with the most idle connections in the shard,
// ties at random: it spreads connections, not load (kept for pools whose
// backends are identical and whose sessions are alike).
type MostIdle struct{}

func (MostIdle) Pick(cands []*shardBackend, rng *rand.Rand) *shardBackend {
	return best(cands, rng, func(a, b *shardBackend) int { return cmp.Compare(b.idleN, a.idleN) })
}

// pick is the group's balancer over this shard's candidates for lane;
// movable leaves out the backends whose connections cannot move to
// another loop (TLS: their state is this loop's).
func (sh *ShardPool) pick(lane string, movable bool) *shardBackend {
	backends := sh.pool.Backends()
	group, protocol := splitLane(lane)
	healthyOnly := false
	for _, b := range backends {
		if sh.candidate(b, group, protocol, false, movable) && b.Healthy() {
			healthyOnly = true
			break
		}
	}
	cands := sh.cands[:0]
	for _, b := range backends {
		if sh.candidate(b, group, protocol, healthyOnly, movable) {
			cands = append(cands, b.shards[sh.Index])
		}
	}
	sh.cands = cands[:0]
	if len(cands) == 0 {
		return nil
	}
	return sh.pool.balancer(group).Pick(cands, sh.rng)
}

// candidate reports whether b can serve a lease of group and protocol in
// this shard now.
func (sh *ShardPool) candidate(b *Backend, group, protocol string, healthyOnly, movable bool) bool {
	return b.Group() == group && b.Protocol() == protocol && b.shards[sh.Index].idleN > 0 && b.TakesLeases() &&
		(!healthyOnly || b.Healthy()) && (!movable || !b.TLS)
}
