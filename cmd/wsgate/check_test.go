package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func check(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runCheck(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	good := writeFile(t, "good.yaml", `groups:
  - name: stt
    balance: random
    backends:
      - {url: "ws://127.0.0.1:9001/", pool_target: 4, release_policy: reset, reset_message: "RESET"}
routes:
  - {path: /stt/, group: stt}
`)
	code, out, errOut := check(t, "-config", good)
	if code != 0 {
		t.Fatalf("good file: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"is valid", "balance: random", "pool_target: 4", "release_policy: reset", "reset_quiet: 100ms",
		"max_conns: none", "prefix /stt/ -> stt", "flow_window: 262144", "stall: 30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("good file: output lacks %q:\n%s", want, out)
		}
	}

	for name, tc := range map[string]struct {
		body string
		want []string
	}{
		"typo":        {"groups:\n  - name: a\n    backends:\n      - url: ws://h:1/\n        pool_targe: 3\n", []string{"line 5", "groups[0].backends[0].pool_targe", "unknown key"}},
		"empty":       {"", []string{"the document is empty"}},
		"bad value":   {"groups:\n  - name: a\n    backends:\n      - {url: ws://h:1/, pool_target: -2}\n", []string{"groups[0].backends[0].pool_target", "-2"}},
		"no backends": {"groups:\n  - name: a\n", []string{"no backend in any group"}},
	} {
		code, out, errOut := check(t, "-config", writeFile(t, name+".yaml", tc.body))
		if code != 1 || out != "" {
			t.Errorf("%s: exit %d, stdout %q", name, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: %q does not say %q", name, errOut, w)
			}
		}
		if strings.Contains(errOut, `\n`) {
			t.Errorf("%s: a literal \\n in %q", name, errOut)
		}
	}

	if code, out, _ := check(t, "-backend", "wss://stt.example/x", "-pool-size", "100"); code != 0 || !strings.Contains(out, "url: wss://stt.example/x") {
		t.Errorf("flags: exit %d\n%s", code, out)
	}
	if code, _, errOut := check(t, "-backend", "ws://h:1/", "-tls-listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "-tls-cert") {
		t.Errorf("TLS listener without a certificate: exit %d, %s", code, errOut)
	}
	if code, _, _ := check(t, "-no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestHelpListsModes(t *testing.T) {
	var out bytes.Buffer
	if code := runCheck([]string{"-h"}, &out, &out); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	help := out.String()
	for _, mode := range []string{"wsgate echo", "wsgate check", "wsgate migrate", "wsgate -version"} {
		if !strings.Contains(help, mode) {
			t.Errorf("-h does not list %q", mode)
		}
	}
	if strings.Contains(help, "-config-db wsgate") {
		t.Error("garbled -config-db line")
	}
}

func TestVersion(t *testing.T) {
	if code := run([]string{"-version"}); code != 0 {
		t.Fatalf("-version: exit %d", code)
	}
}
