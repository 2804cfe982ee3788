package tlsinterop

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/internal/testcert"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/server"
)

// pki is a throwaway CA, a server certificate it signed for 127.0.0.1 and
// localhost, and their files, as every peer here needs them: PEM files
// for openssl, Node and Python, a pool for Go, the leaf's key hash for
// Chromium.
type pki struct {
	ca                        *testcert.CA
	leaf                      *testcert.Leaf
	dir                       string
	caFile, certFile, keyFile string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := testcert.NewCA("wsgate interop CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, leaf: leaf, dir: t.TempDir()}
	if p.certFile, p.keyFile, err = leaf.Write(p.dir, "server"); err != nil {
		t.Fatal(err)
	}
	if p.caFile, err = ca.Write(p.dir, "ca"); err != nil {
		t.Fatal(err)
	}
	return p
}

// client is a Go client configuration trusting the CA, for 127.0.0.1,
// limited to version (0: 1.2 and 1.3).
func (p *pki) client(version uint16) *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version}
}

// spkiHash is the base64 SHA-256 of the leaf's SubjectPublicKeyInfo, the
// form Chromium's --ignore-certificate-errors-spki-list takes.
func (p *pki) spkiHash(t testing.TB) string {
	t.Helper()
	cert, err := x509.ParseCertificate(p.leaf.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// serverTLS is the listener configuration wsgate builds from -tls-cert and
// -tls-key (tlsconf: SNI, ALPN, resumption).
func (p *pki) serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	s, err := tlsconf.NewServer(tlsconf.ServerOptions{CertFiles: []string{p.certFile}, KeyFiles: []string{p.keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Config()
}

// startServer starts the endpoint (echo) with a TLS listener only, and
// stops it when t ends. Warnings and errors go to t's log.
func startServer(t testing.TB, cfg server.Config, p *pki) *server.Server {
	t.Helper()
	cfg.TLSAddr = "127.0.0.1:0"
	cfg.TLS = p.serverTLS(t)
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// counts are the server's counters by name, for comparing before and
// after: "tls_handshakes", "upgraded", "open", "sessions",
// "tls_read_errors", "accepted", "closed/<reason>", "tls_failed/<reason>",
// "frames_in", "frames_out", "bytes_in", "bytes_out".
type counts map[string]int64

// strictCounts are the counters waitCounts holds to exactly what the
// test wants (0 when it names none): every outcome of a connection. The
// traffic counters (accepted, frames, bytes) are checked only when named.
func isStrict(name string) bool {
	switch name {
	case "tls_handshakes", "upgraded", "open", "sessions", "tls_read_errors", "refused":
		return true
	}
	return strings.HasPrefix(name, "closed/") || strings.HasPrefix(name, "tls_failed/")
}

func readCounts(st *server.Stats) counts {
	c := counts{
		"accepted":        st.Accepted.Load(),
		"tls_handshakes":  st.TLSHandshakes.Load(),
		"upgraded":        st.Upgraded.Load(),
		"open":            st.Open.Load(),
		"sessions":        st.Sessions.Load(),
		"tls_read_errors": st.TLSReadErrors.Load(),
		"frames_in":       st.FramesIn(),
		"frames_out":      st.FramesOut(),
		"bytes_in":        st.BytesIn(),
		"bytes_out":       st.BytesOut(),
	}
	for i, name := range server.TLSFailureNames() {
		c["tls_failed/"+name] = st.TLSFailures(server.TLSFailure(i))
	}
	for r := server.ReasonNone; r.String() != "unknown"; r++ {
		c["closed/"+r.String()] = st.Closed(r)
	}
	var refused int64
	for _, status := range append(server.RefusalStatuses(), 0) {
		refused += st.Refused(status)
	}
	c["refused"] = refused
	return c
}

// minus is c - before, counter by counter.
func (c counts) minus(before counts) counts {
	d := counts{}
	for k, v := range c {
		d[k] = v - before[k]
	}
	return d
}

func (c counts) String() string {
	var parts []string
	for k, v := range c {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// mismatch lists the counters of d that differ from want: every strict
// counter, and the others want names.
func (d counts) mismatch(want counts) []string {
	var bad []string
	for k, v := range d {
		w, named := want[k]
		if (named || isStrict(k)) && v != w {
			bad = append(bad, fmt.Sprintf("%s=%d (want %d)", k, v, w))
		}
	}
	for k := range want {
		if _, ok := d[k]; !ok {
			bad = append(bad, fmt.Sprintf("%s: no such counter", k))
		}
	}
	sort.Strings(bad)
	return bad
}

// waitCounts waits until the server's counters moved from before by
// exactly want (see isStrict), and fails with the difference otherwise.
// Counters settle after the client saw its end: the server closes and
// counts on its loop.
func waitCounts(t testing.TB, st *server.Stats, before, want counts) {
	t.Helper()
	testutil.CheckFor(t, 5*time.Second, func() error {
		d := readCounts(st).minus(before)
		if bad := d.mismatch(want); len(bad) > 0 {
			return fmt.Errorf("server counters: %s\n\tall that moved: %v", strings.Join(bad, ", "), d)
		}
		return nil
	})
}

// need fails or skips t when an external peer is missing: under CI=true a
// missing dependency fails the test (CI must have run the deps target);
// elsewhere the test is skipped with the command that installs it.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing (%v): run `make interop-deps` (scripts/interop-deps.sh)", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// lookTool finds a peer's binary: the value of the environment variable
// env if set, else def; a name without a slash is looked up in PATH.
func lookTool(env, def string) (string, error) {
	if p := os.Getenv(env); p != "" {
		def = p
	}
	if strings.ContainsRune(def, '/') {
		if st, err := os.Stat(def); err != nil {
			return "", err
		} else if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not executable", def)
		}
		return def, nil
	}
	return exec.LookPath(def)
}

// interopCache is where scripts/interop-deps.sh installs the npm packages.
func interopCache() string {
	if d := os.Getenv("WSGATE_INTEROP_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(d, "wsgate-interop")
}

// testdata is the absolute path of a file in testdata/.
func testdata(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tail is the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = slices.Clone(lines[len(lines)-n:])
		lines = append([]string{"..."}, lines...)
	}
	return strings.Join(lines, "\n")
}
