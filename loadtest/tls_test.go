package loadtest

import (
	"crypto/tls"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestNginxConfigTLS(t *testing.T) {
	base := nginxConfig{
		Prefix: "/tmp/x", Listen: "127.0.0.1:9000", Backends: []string{"127.0.0.1:9001"},
		Workers: 2, WorkerConnections: 19900, RlimitNofile: 20000, Backlog: 4096,
	}
	withTLS := base
	withTLS.TLS = &nginxTLS{CertFile: "/tmp/c/server.pem", KeyFile: "/tmp/c/server-key.pem", Protocols: "TLSv1.3"}
	tests := []struct {
		name          string
		cfg           nginxConfig
		want, wantNot []string
	}{
		{"plain", base, []string{"listen 127.0.0.1:9000 backlog=4096 reuseport;"}, []string{"ssl"}},
		{"tls", withTLS, []string{
			"listen 127.0.0.1:9000 ssl backlog=4096 reuseport;",
			"ssl_certificate /tmp/c/server.pem;",
			"ssl_certificate_key /tmp/c/server-key.pem;",
			"ssl_protocols TLSv1.3;",
			"ssl_session_tickets off;",
			"proxy_pass http://backends;", // the backends stay plain
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, err := renderNginxConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(text, want) {
					t.Errorf("config lacks %q:\n%s", want, text)
				}
			}
			for _, not := range tc.wantNot {
				if strings.Contains(text, not) {
					t.Errorf("config has %q:\n%s", not, text)
				}
			}
		})
	}
}

// TestNginxCommandTLSFiles checks the configuration nginxCommand writes for
// a -tls run names the run's certificate and the version asked for.
func TestNginxCommandTLSFiles(t *testing.T) {
	if _, err := findNginx(""); err != nil {
		t.Skip("nginx is not installed")
	}
	opts, err := ParseTLSOptions("1.2", DefaultTLSGroups)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newTLSMaterials(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.remove()
	dir := t.TempDir()
	if _, err := nginxCommand("", "127.0.0.1:1", []string{"127.0.0.1:2"}, dir, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + "/nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ssl_certificate " + m.certFile + ";", "ssl_certificate_key " + m.keyFile + ";", "ssl_protocols TLSv1.2;"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q:\n%s", want, b)
		}
	}
}

func TestTLSFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = accepted
		check   func(t *testing.T, o Options)
	}{
		{name: "plain by default", args: []string{"-compare", "wsgate,nginx"}, check: func(t *testing.T, o Options) {
			if o.TLS != nil {
				t.Errorf("TLS = %+v without -tls", o.TLS)
			}
		}},
		{name: "TLS 1.3, X25519 and P-256 by default", args: []string{"-compare", "wsgate,nginx", "-tls"}, check: func(t *testing.T, o Options) {
			if o.TLS == nil || o.TLS.Version != "1.3" || len(o.TLS.Groups) != 2 || o.TLS.Groups[0] != tls.X25519 || o.TLS.Groups[1] != tls.CurveP256 {
				t.Errorf("TLS = %+v", o.TLS)
			}
		}},
		{name: "version and groups", args: []string{"-proxy", "nginx", "-tls", "-tls-version", "1.2", "-tls-groups", "p256, X25519MLKEM768"},
			check: func(t *testing.T, o Options) {
				if o.TLS.Version != "1.2" || len(o.TLS.Groups) != 2 || o.TLS.Groups[0] != tls.CurveP256 || o.TLS.Groups[1] != tls.X25519MLKEM768 {
					t.Errorf("TLS = %+v", o.TLS)
				}
			}},
		{name: "goroutine refused", args: []string{"-compare", "wsgate,goroutine", "-tls"}, wantErr: "-tls: goroutine has no TLS listener"},
		{name: "direct refused", args: []string{"-proxy", "direct", "-tls"}, wantErr: "-tls: direct has no TLS listener"},
		{name: "bad version", args: []string{"-tls", "-tls-version", "1.1"}, wantErr: `-tls-version "1.1": want 1.2 or 1.3`},
		{name: "bad group", args: []string{"-tls", "-tls-groups", "x448"}, wantErr: `unknown key exchange "x448"`},
		{name: "version without -tls", args: []string{"-tls-version", "1.2"}, wantErr: "need -tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// -wsgate names any file that exists, so the binary check passes.
			f, fsys, code, done := parseFlags(append(tc.args, "-wsgate", "/bin/sh"), io.Discard)
			if done {
				t.Fatalf("parseFlags: exit %d", code)
			}
			o, err := f.options(fsys)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			case tc.check != nil:
				tc.check(t, o)
			}
		})
	}
}

func TestTLSTableRow(t *testing.T) {
	results := []*Result{sampleResult(KindWsgate, 0.1), sampleResult(KindNginx, 0.1)}
	results[0].TLS = &TLSResult{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", KeyExchange: "X25519"}
	results[1].TLS = &TLSResult{Version: "TLS 1.3"} // its run failed before the probe
	var b strings.Builder
	WriteTable(&b, results)
	for _, want := range []string{
		"3,000 sessions over 3 backends, clients over wss:// (TLS 1.3), opened at once",
		"| TLS negotiated (version, cipher, key exchange) | TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 | — |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestEndToEndTLS runs a handful of sessions over wss:// through the real
// gateway (package gateway, as `wsgate` runs it, in a child process) and
// through nginx when it is installed, for each TLS version: the clients
// verify the throwaway CA, the probe reports what was negotiated, nothing
// is lost.
func TestEndToEndTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	kinds := []string{KindWsgate}
	if _, err := findNginx(""); err == nil {
		kinds = append(kinds, KindNginx)
	}
	for _, version := range []string{"1.3", "1.2"} {
		t.Run("TLS "+version, func(t *testing.T) {
			sc := Scenarios["seed-table-scaled"]
			sc.Name = "tiny-tls"
			sc.Backends, sc.Conns, sc.Rate = 2, 6, 10
			sc.Warmup, sc.Duration = 200*time.Millisecond, time.Second
			sc.Settle, sc.ConnectWait = 3*time.Second, 20*time.Second
			opts, err := ParseTLSOptions(version, DefaultTLSGroups)
			if err != nil {
				t.Fatal(err)
			}
			results := Run(Options{Scenario: sc, Kinds: kinds, Commands: testCommands(), LogDir: t.TempDir(), TLS: opts})
			for _, r := range results {
				if r.Failed != "" {
					t.Fatalf("%s failed: %s", r.Name, r.Failed)
				}
				if r.Errors.Total() != 0 || r.Sessions.OpenAtEnd != 6 || r.Traffic.Received == 0 {
					t.Errorf("%s: errors %+v, open %d, received %d", r.Name, r.Errors, r.Sessions.OpenAtEnd, r.Traffic.Received)
				}
				// The cipher suite depends on the CPU (AES hardware or not).
				if r.TLS == nil || r.TLS.Version != "TLS "+version || r.TLS.KeyExchange != "X25519" || r.TLS.CipherSuite == "" {
					t.Errorf("%s negotiated %+v, want TLS %s with X25519", r.Name, r.TLS, version)
				}
				if !r.Proxy.Measured || r.Proxy.RSSAvg == 0 {
					t.Errorf("%s: proxy not measured: %+v", r.Name, r.Proxy)
				}
			}
		})
	}
}
