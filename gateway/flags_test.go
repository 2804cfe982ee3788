package gateway_test

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/gateway"
)

// Regression (hardening issue, defect 12): -config-db silently ignored
// backend flags while -config warned about them.
func TestBackendFlagsIgnoredBySourcesAreNamed(t *testing.T) {
	for _, source := range [][]string{
		{"-config-db", "postgres://127.0.0.1:1/none"},
		{"-config", writeConfig(t, "default_group: g\ngroups:\n  - name: g\n    backends:\n      - {url: \"ws://127.0.0.1:1/\"}\n")},
	} {
		args := append(append([]string(nil), source...), "-pool-size", "5", "-release-policy", "reuse")
		_, warnings, err := gateway.ParseArgs(args)
		if err != nil {
			t.Fatalf("%v: %v", source[0], err)
		}
		joined := strings.Join(warnings, "\n")
		if !strings.Contains(joined, "-pool-size") || !strings.Contains(joined, "-release-policy") || !strings.Contains(joined, source[0]) {
			t.Errorf("%s: warnings %q do not name the ignored flags", source[0], warnings)
		}
	}
}

// The binary's defaults reach the pool: the release policy is close and
// backend frames are limited, with no flag given.
func TestDefaultsReachThePool(t *testing.T) {
	gw := newGateway(t, "-backend", "ws://127.0.0.1:1/")
	b := gw.Pool.Backends()[0]
	if p := b.Settings().Policy.String(); p != "close" {
		t.Errorf("default release policy %q, want close", p)
	}
	cfg := gw.Server.Config()
	if cfg.MaxFrameBytes <= 0 || cfg.MaxMessageBytes <= 0 {
		t.Errorf("server limits %d/%d", cfg.MaxFrameBytes, cfg.MaxMessageBytes)
	}
}
