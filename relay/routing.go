package relay

import (
	"sort"
	"strings"
)

// Route maps request paths to backend groups: exact paths first, then the
// longest matching prefix, then the default group.
type Route struct {
	Path  string // "/chat/" (prefix) or "/health" with Exact
	Exact bool
	Group string
}

// Routing is one immutable version of the routes. Safe for concurrent use.
type Routing struct {
	Version int64   // the configuration version it came from
	Routes  []Route // as configured
	Default string  // group for paths no route matches; "" = refuse (404)

	exact    map[string]string
	prefixes []Route // longest first
}

// NewRouting prepares routes for lookup.
func NewRouting(version int64, routes []Route, def string) *Routing {
	r := &Routing{Version: version, Routes: routes, Default: def, exact: make(map[string]string)}
	for _, rt := range routes {
		if rt.Exact {
			r.exact[rt.Path] = rt.Group
		} else {
			r.prefixes = append(r.prefixes, rt)
		}
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].Path) > len(r.prefixes[j].Path) })
	return r
}

// Lookup returns the group for a request target (its query is ignored),
// and false when no route matches and there is no default.
func (r *Routing) Lookup(uri string) (string, bool) {
	path, _, _ := strings.Cut(uri, "?")
	if g, ok := r.exact[path]; ok {
		return g, true
	}
	for _, rt := range r.prefixes {
		if strings.HasPrefix(path, rt.Path) {
			return rt.Group, true
		}
	}
	return r.Default, r.Default != ""
}
