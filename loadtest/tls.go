package loadtest

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/testcert"
)

// TLS runs (-tls): the clients speak wss:// to the front (wsgate's TLS
// listener, nginx's `listen ... ssl`); the echo backends behind it stay
// plain ws://. Every run of an invocation uses one throwaway CA and one
// ECDSA P-256 server certificate for 127.0.0.1, made in a temporary folder
// that is removed when the invocation ends; the clients verify the front
// against that CA. Each session makes a full handshake: the clients keep
// no session cache, so nothing is resumed whatever the front offers.

// TLSOptions are the TLS settings of an invocation.
type TLSOptions struct {
	// Version is "1.2" or "1.3": the clients offer that version alone,
	// nginx is configured for it alone (ssl_protocols) and wsgate's
	// -tls-min-version is set to it.
	Version string
	// Groups are the key exchanges the clients offer (their
	// CurvePreferences): by default X25519 and P-256, which both fronts
	// support; both pick X25519. Go's own default would add hybrid
	// post-quantum key exchanges that wsgate (crypto/tls) selects and
	// nginx with OpenSSL 3.0 cannot, and the two fronts would then do
	// different work per handshake. In TLS 1.2 the list also names the
	// curves the client accepts in the server's ECDSA certificate, so it
	// must hold P-256 there (nginx finds no shared cipher otherwise).
	Groups []tls.CurveID
}

// tlsGroupNames are the -tls-groups names.
var tlsGroupNames = map[string]tls.CurveID{
	"x25519":         tls.X25519,
	"p256":           tls.CurveP256,
	"p384":           tls.CurveP384,
	"x25519mlkem768": tls.X25519MLKEM768,
}

// DefaultTLSGroups is what -tls-groups defaults to.
const DefaultTLSGroups = "x25519,p256"

// ParseTLSOptions reads -tls-version and -tls-groups.
func ParseTLSOptions(version, groups string) (*TLSOptions, error) {
	if version != "1.2" && version != "1.3" {
		return nil, fmt.Errorf("loadtest: -tls-version %q: want 1.2 or 1.3", version)
	}
	o := &TLSOptions{Version: version}
	for _, name := range strings.Split(groups, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		id, ok := tlsGroupNames[name]
		if !ok {
			return nil, fmt.Errorf("loadtest: -tls-groups: unknown key exchange %q (want x25519, p256, p384 or x25519mlkem768)", name)
		}
		o.Groups = append(o.Groups, id)
	}
	if len(o.Groups) == 0 {
		return nil, fmt.Errorf("loadtest: -tls-groups: name at least one key exchange")
	}
	return o, nil
}

// tlsKind reports whether kind terminates TLS in a -tls run (the others
// refuse -tls).
func tlsKind(kind string) bool { return kind == KindWsgate || kind == KindNginx }

// wireVersion is the crypto/tls constant of a "1.2" or "1.3" version.
func (o *TLSOptions) wireVersion() uint16 {
	if o.Version == "1.2" {
		return tls.VersionTLS12
	}
	return tls.VersionTLS13
}

// versionName is the version as crypto/tls names it: "TLS 1.3".
func (o *TLSOptions) versionName() string { return tls.VersionName(o.wireVersion()) }

// tlsMaterials are the files and the client configuration of one
// invocation's TLS runs.
type tlsMaterials struct {
	opts     *TLSOptions
	dir      string      // the temporary folder holding the files below
	certFile string      // the server certificate, PEM
	keyFile  string      // its private key, PEM
	client   *tls.Config // the clients': the CA as the only root
}

// newTLSMaterials makes a CA and a server certificate for 127.0.0.1 in a
// new temporary folder; remove deletes it.
func newTLSMaterials(o *TLSOptions) (*tlsMaterials, error) {
	dir, err := os.MkdirTemp("", "wsgate-loadtest-tls-")
	if err != nil {
		return nil, fmt.Errorf("loadtest: TLS files: %w", err)
	}
	m := &tlsMaterials{opts: o, dir: dir}
	if err := m.make(); err != nil {
		m.remove()
		return nil, fmt.Errorf("loadtest: TLS certificate: %w", err)
	}
	return m, nil
}

func (m *tlsMaterials) make() error {
	ca, err := testcert.NewCA("wsgate loadtest CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Server("127.0.0.1")
	if err != nil {
		return err
	}
	if m.certFile, m.keyFile, err = leaf.Write(m.dir, "server"); err != nil {
		return err
	}
	v := m.opts.wireVersion()
	m.client = &tls.Config{
		RootCAs:          ca.Pool(),
		MinVersion:       v,
		MaxVersion:       v,
		CurvePreferences: m.opts.Groups,
	}
	return nil
}

// requested is a TLSResult with the version asked for alone: a run's
// until its probe reports what was negotiated.
func (m *tlsMaterials) requested() *TLSResult { return &TLSResult{Version: m.opts.versionName()} }

func (m *tlsMaterials) remove() {
	if m != nil && m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
}

// TLSResult is what a run's probe connection negotiated with the front.
type TLSResult struct {
	Version     string `json:"version"`      // "TLS 1.3"
	CipherSuite string `json:"cipher_suite"` // "TLS_AES_128_GCM_SHA256"
	KeyExchange string `json:"key_exchange"` // "X25519"
}

func negotiated(cs tls.ConnectionState) *TLSResult {
	return &TLSResult{
		Version:     tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
		KeyExchange: cs.CurveID.String(),
	}
}

// String is the table's cell: "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519".
func (t *TLSResult) String() string {
	return t.Version + ", " + t.CipherSuite + ", " + t.KeyExchange
}
