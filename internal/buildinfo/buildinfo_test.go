package buildinfo

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Revision: "0123456789abcdef", Modified: true, GoVersion: "go1.26.8"}
	if got := i.String(); !strings.HasPrefix(got, "wsgate v1.2.3 (rev 0123456789ab, modified) go1.26.8 ") {
		t.Fatalf("%q", got)
	}
	if g := Get(); g.Version == "" || g.GoVersion == "" {
		t.Fatalf("Get: %+v", g)
	}
}
