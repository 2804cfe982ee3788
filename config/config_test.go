package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
)

const goodYAML = `
listen: 127.0.0.1:8080
limits: {max_message_bytes: 65536}
timeouts: {acquire: 2s}
default_group: main
groups:
  - name: main
    backends:
      - {url: "ws://127.0.0.1:9001/", pool_target: 4, max_conns: 50, weight: 2}
      - {url: "ws://127.0.0.1:9002/asr", pool_target: 2, release_policy: reset, reset_message: "end", reset_ack: "ok", reset_timeout: 2s}
  - name: tts
    backends:
      - {url: "ws://127.0.0.1:9003/", enabled: false, session_start: true, session_headers: [X-User]}
routes:
  - {path: /tts/, group: tts}
  - {path: /health, exact: true, group: main}
`

func TestCompileGoodConfig(t *testing.T) {
	c, err := ParseYAML([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Compile(c, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Backends) != 3 || snap.Backends[0].Weight != 2 || snap.Backends[1].Policy != pool.PolicyReset ||
		!snap.Backends[2].Draining || snap.Backends[2].Group != "tts" {
		t.Fatalf("backends %+v", snap.Backends)
	}
	for path, want := range map[string]string{"/tts/en": "tts", "/health": "main", "/health/x": "main", "/other?q=1": "main"} {
		if got, ok := snap.Routing.Lookup(path); !ok || got.Group != want {
			t.Errorf("route %s -> %q, want %q", path, got.Group, want)
		}
	}
}

// TestCompileRejects: every rule refuses the whole configuration with an
// error naming the field and the value.
func TestCompileRejects(t *testing.T) {
	base := func() *GatewayConfig {
		c, err := ParseYAML([]byte(goodYAML))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *GatewayConfig)
		field  string // must appear in the error, with the value
		value  string
	}{
		{"bad url", func(c *GatewayConfig) { c.Groups[0].Backends[0].URL = "http//nowhere" }, "groups[0].backends[0].url", "http//nowhere"},
		{"no backend at all", func(c *GatewayConfig) {
			for i := range c.Groups {
				c.Groups[i].Backends = nil
			}
		}, "groups", "no backend in any group"},
		{"unknown balance", func(c *GatewayConfig) { c.Groups[0].Balance = "round-robin" }, "groups[0].balance", "round-robin"},
		{"subprotocol not a token", func(c *GatewayConfig) { c.Groups[0].Subprotocols = []string{"chat v2"} }, "groups[0].subprotocols[0]", "chat v2"},
		{"required without subprotocols", func(c *GatewayConfig) { c.Groups[0].SubprotocolRequired = true }, "groups[0].subprotocol_required", "true"},
		{"null origin on a route", func(c *GatewayConfig) { c.Routes[0].AllowOrigins = []string{"null"} }, "routes[0].allow_origins", "null"},
		{"origin with a path", func(c *GatewayConfig) { c.AllowOrigins = []string{"https://a.example/app"} }, "allow_origins", "https://a.example/app"},
		{"url without host", func(c *GatewayConfig) { c.Groups[0].Backends[0].URL = "ws://:9000/" }, "groups[0].backends[0].url", "ws://:9000/"},
		{"negative pool target", func(c *GatewayConfig) { c.Groups[0].Backends[1].PoolTarget = -1 }, "groups[0].backends[1].pool_target", "-1"},
		{"negative max", func(c *GatewayConfig) { c.Groups[0].Backends[1].MaxConns = -5 }, "groups[0].backends[1].max_conns", "-5"},
		{"target over max", func(c *GatewayConfig) { c.Groups[0].Backends[0].PoolTarget = 60 }, "groups[0].backends[0].pool_target", "60"},
		{"negative weight", func(c *GatewayConfig) { c.Groups[0].Backends[0].Weight = -1 }, "groups[0].backends[0].weight", "-1"},
		{"unknown release policy", func(c *GatewayConfig) { c.Groups[0].Backends[0].ReleasePolicy = "recycle" }, "groups[0].backends[0].release_policy", "recycle"},
		{"negative duration", func(c *GatewayConfig) { c.Groups[0].Backends[0].PingInterval = -1 }, "groups[0].backends[0].ping_interval", "-1ns"},
		{"bad header name", func(c *GatewayConfig) { c.Groups[1].Backends[0].SessionHeaders = []string{"X User"} }, "groups[1].backends[0].session_headers[0]", "X User"},
		{"duplicate backend", func(c *GatewayConfig) { c.Groups[1].Backends[0].URL = "ws://127.0.0.1:9001/" }, "groups[1].backends[0].url", "ws://127.0.0.1:9001/"},
		{"duplicate group", func(c *GatewayConfig) { c.Groups[1].Name = "main" }, "groups[1].name", "main"},
		{"unnamed group", func(c *GatewayConfig) { c.Groups[1].Name = "" }, "groups[1].name", `""`},
		{"route to a missing group", func(c *GatewayConfig) { c.Routes[0].Group = "stt" }, "routes[0].group", "stt"},
		{"route not a path", func(c *GatewayConfig) { c.Routes[0].Path = "tts" }, "routes[0].path", "tts"},
		{"duplicate route", func(c *GatewayConfig) { c.Routes[1] = c.Routes[0] }, "routes[1].path", "/tts/"},
		{"default group missing", func(c *GatewayConfig) { c.DefaultGroup = "nope" }, "default_group", "nope"},
		{"negative limit", func(c *GatewayConfig) { c.Limits.MaxConns = -1 }, "limits", "-1"},
		{"negative timeout", func(c *GatewayConfig) { c.Timeouts.Acquire = -1 }, "timeouts.acquire", "-1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			_, err := Compile(c, "test")
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.value) {
				t.Fatalf("error %v, want one naming %s and %s", err, tc.field, tc.value)
			}
		})
	}
}

// TestParseYAMLRejects: unknown keys, values of the wrong kind and
// documents that do not parse are refused, the error naming the line and,
// where it is about one value, the field and the value.
func TestParseYAMLRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // each must appear in the error
	}{
		{"unknown key (a typo of pool_target)",
			"groups:\n  - name: a\n    backends:\n      - url: ws://h:1/\n        pool_size: 3\n",
			[]string{"line 5", "groups[0].backends[0].pool_size", "unknown key"}},
		{"unknown key at the top", "listen: x\nlimit: {max_conns: 1}\n", []string{"line 2", "limit", "unknown key"}},
		{"bad duration", "listen: x\ntimeouts:\n  acquire: soon\n",
			[]string{"line 3", "timeouts.acquire", `"soon"`, "duration"}},
		{"duration without a unit", "groups: [{name: a, backends: [{url: 'ws://h:1/', dial_timeout: 5}]}]",
			[]string{"line 1", "groups[0].backends[0].dial_timeout", `"5"`, "duration"}},
		{"a list for a string", "listen: [1, 2]", []string{"line 1", "listen is a list", "a string"}},
		{"a word for a number", "limits:\n  max_conns: many\n", []string{"line 2", "limits.max_conns", `"many"`, "whole number"}},
		{"a string for a list", "groups: main", []string{"line 1", "groups", `"main"`, "a list"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "the document is a list"}},
		{"syntax", "groups: [\n", []string{"line"}},
		{"empty", "# nothing\n", []string{"empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.doc))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted (%v)", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestParseYAMLReadsDurationsAndMerges: durations are Go duration
// strings; an empty value leaves the default; anchors and merge keys work
// (and the keys they bring are checked like any other).
func TestParseYAMLReadsDurationsAndMerges(t *testing.T) {
	doc := `
timeouts: {acquire: 250ms, handshake: 1h30m, close: }
defaults: &defaults
groups:
  - name: main
    backends:
      - &b {url: "ws://h:1/", reset_quiet: 5s, pool_target: 2}
      - {<<: *b, url: "ws://h:2/", dial_timeout: 1.5s}
`
	_, err := ParseYAML([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "line 3: defaults: unknown key") {
		t.Fatalf("the unknown key 'defaults' (line 3): %v", err)
	}
	c, err := ParseYAML([]byte(strings.Replace(doc, "defaults: &defaults\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeouts.Acquire != 250*time.Millisecond || c.Timeouts.Handshake != 90*time.Minute || c.Timeouts.Close != 0 {
		t.Errorf("timeouts %+v", c.Timeouts)
	}
	b := c.Groups[0].Backends
	if b[1].URL != "ws://h:2/" || b[1].ResetQuiet != 5*time.Second || b[1].PoolTarget != 2 || b[1].DialTimeout != 1500*time.Millisecond {
		t.Errorf("merged backend %+v", b[1])
	}
	_, err = ParseYAML([]byte("groups:\n  - name: a\n    backends:\n      - &b {url: 'ws://h:1/', pool_sise: 1}\n      - {<<: *b}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4: groups[0].backends[0].pool_sise: unknown key") {
		t.Fatalf("a typo in an anchored mapping: %v", err)
	}
}

func TestApplierKeepsLastGoodVersion(t *testing.T) {
	p := pool.New(pool.Config{Shards: 1})
	a := NewApplier(p, relay.New(p, 0), nil)
	c, _ := ParseYAML([]byte(goodYAML))
	if _, err := a.Apply(c, "test"); err != nil {
		t.Fatal(err)
	}
	bad, _ := ParseYAML([]byte(goodYAML))
	bad.Routes[0].Group = "missing"
	if _, err := a.Apply(bad, "test"); err == nil {
		t.Fatal("bad version applied")
	}
	st := a.Status()
	if st.Version != 1 || !strings.Contains(st.LastError, "routes[0].group") {
		t.Fatalf("status %+v", st)
	}
	if g, _ := a.Current().Routing.Lookup("/tts/x"); g.Group != "tts" || len(p.Backends()) != 3 {
		t.Fatalf("pool changed by a rejected version: route %q, %d backends", g.Group, len(p.Backends()))
	}
	// The same good version again changes nothing; a new one is version 2.
	if _, err := a.Apply(c, "test"); err != nil || a.Status().Version != 1 || a.Status().LastError != "" {
		t.Fatalf("reapply: %v %+v", err, a.Status())
	}
	c2, _ := ParseYAML([]byte(goodYAML))
	c2.Groups[0].Backends = c2.Groups[0].Backends[:1]
	if _, err := a.Apply(c2, "test"); err != nil || a.Status().Version != 2 {
		t.Fatalf("new version: %v %+v", err, a.Status())
	}
	// A backend left out with no connection is gone from the pool at once
	// (one with connections stays, marked removed, until they end).
	if n := len(p.Backends()); n != 2 {
		t.Fatalf("%d backends after one was left out of the new version", n)
	}
}
