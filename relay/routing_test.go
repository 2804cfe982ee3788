package relay

import "testing"

func TestRoutingLookup(t *testing.T) {
	r := NewRouting(1, []Route{{Path: "/a/", Group: "a"}, {Path: "/a/b/", Group: "ab"}, {Path: "/x", Exact: true, Group: "x"}}, "")
	for uri, want := range map[string]string{"/a/1": "a", "/a/b/c?q": "ab", "/x": "x", "/x?y=1": "x"} {
		if got, ok := r.Lookup(uri); !ok || got != want {
			t.Errorf("%s -> %q %v, want %q", uri, got, ok, want)
		}
	}
	if _, ok := r.Lookup("/x/y"); ok {
		t.Error("an exact route matched a longer path, or an unrouted path found a group without a default")
	}
}
