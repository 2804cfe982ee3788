package relay

import (
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/origin"
)

// Route maps request paths to a backend group: exact paths first, then
// the longest matching prefix, then the default group.
type Route struct {
	Path    string // "/chat/" (prefix) or "/health" with Exact
	Exact   bool
	Group   string
	Origins *origin.Allowlist // the pages allowed to open a session here; nil: the routing's
}

// Subprotocols are the subprotocols a group's backends speak, preference
// order, and whether a client must offer one.
type Subprotocols struct {
	Spoken   []string
	Required bool
}

// Routing is one immutable version of the routes. Safe for concurrent use.
type Routing struct {
	Version      int64                   // the configuration version it came from
	Routes       []Route                 // as configured
	Default      string                  // group for paths no route matches; "" = refuse (404)
	Origins      *origin.Allowlist       // allowed origins where a route names none; nil: any
	Subprotocols map[string]Subprotocols // per group; a group without any is absent

	exact    map[string]Route
	prefixes []Route // longest first
}

// NewRouting prepares routes for lookup.
func NewRouting(version int64, routes []Route, def string, origins *origin.Allowlist, protocols map[string]Subprotocols) *Routing {
	r := &Routing{Version: version, Routes: routes, Default: def, Origins: origins, Subprotocols: protocols, exact: make(map[string]Route)}
	for _, rt := range routes {
		if rt.Origins == nil {
			rt.Origins = origins
		}
		if rt.Exact {
			r.exact[rt.Path] = rt
		} else {
			r.prefixes = append(r.prefixes, rt)
		}
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].Path) > len(r.prefixes[j].Path) })
	return r
}

// Lookup returns the route for a request target (its query is ignored):
// its group and the origins allowed there. False when no route matches
// and there is no default.
func (r *Routing) Lookup(uri string) (Route, bool) {
	path, _, _ := strings.Cut(uri, "?")
	if rt, ok := r.exact[path]; ok {
		return rt, true
	}
	for _, rt := range r.prefixes {
		if strings.HasPrefix(path, rt.Path) {
			return rt, true
		}
	}
	return Route{Group: r.Default, Origins: r.Origins}, r.Default != ""
}
