package relay

import (
	"testing"

	"github.com/wsgate/wsgate/internal/origin"
)

func TestRoutingLookup(t *testing.T) {
	site, _ := origin.Parse([]string{"https://app.example.com"})
	chat, _ := origin.Parse([]string{"https://chat.example.com"})
	r := NewRouting(1, []Route{{Path: "/a/", Group: "a"}, {Path: "/a/b/", Group: "ab", Origins: chat}, {Path: "/x", Exact: true, Group: "x"}}, "", site, nil)
	for uri, want := range map[string]string{"/a/1": "a", "/a/b/c?q": "ab", "/x": "x", "/x?y=1": "x"} {
		if got, ok := r.Lookup(uri); !ok || got.Group != want {
			t.Errorf("%s -> %q %v, want %q", uri, got.Group, ok, want)
		}
	}
	if _, ok := r.Lookup("/x/y"); ok {
		t.Error("an exact route matched a longer path, or an unrouted path found a group without a default")
	}
	// A route's own origins replace the routing's; others inherit them.
	if rt, _ := r.Lookup("/a/b/c"); !rt.Origins.Allows("https://chat.example.com") || rt.Origins.Allows("https://app.example.com") {
		t.Error("/a/b/ does not use its own origins")
	}
	if rt, _ := r.Lookup("/a/1"); !rt.Origins.Allows("https://app.example.com") {
		t.Error("/a/ does not inherit the routing's origins")
	}
}
