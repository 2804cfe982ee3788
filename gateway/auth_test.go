package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/server"
)

// es256Key is a signing key and the PEM file of its public half.
type es256Key struct {
	key  *ecdsa.PrivateKey
	file string
}

func newES256Key(t *testing.T, dir, name string) es256Key {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return es256Key{key: key, file: file}
}

// token signs claims (JSON-encoded) with header {"alg":alg,"typ":"JWT"}.
func (k es256Key) token(t *testing.T, alg string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	if alg == "none" {
		return signed + "."
	}
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, k.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig)
}

func TestJWTAtTheUpgrade(t *testing.T) {
	dir := t.TempDir()
	key, other := newES256Key(t, dir, "key.pem"), newES256Key(t, dir, "other.pem")
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "1", "-session-start",
		"-jwt-key", key.file, "-jwt-audience", "speech", "-jwt-forward-claim", "tenant",
		"-session-header", "Authorization", "-session-header", "User-Agent")
	now := time.Now().Unix()
	good := map[string]any{"sub": "alice", "aud": "speech", "exp": now + 300, "tenant": "acme", "secret": "not forwarded"}
	expired := map[string]any{"sub": "alice", "aud": "speech", "exp": now - 3600}
	wrongAud := map[string]any{"sub": "alice", "aud": "billing", "exp": now + 300}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for name, tc := range map[string]struct {
		path   string
		header http.Header
		want   int
	}{
		"good, bearer":    {"/", bearer(key.token(t, "ES256", good)), 101},
		"good, query":     {"/?lang=en&access_token=" + key.token(t, "ES256", good), nil, 101},
		"missing":         {"/", nil, 401},
		"expired":         {"/", bearer(key.token(t, "ES256", expired)), 401},
		"wrong audience":  {"/", bearer(key.token(t, "ES256", wrongAud)), 401},
		"another key":     {"/", bearer(other.token(t, "ES256", good)), 401},
		"alg none":        {"/", bearer(key.token(t, "none", good)), 401},
		"alg HS256 claim": {"/", bearer(key.token(t, "HS256", good)), 401},
		"garbage":         {"/", bearer("not.a.token"), 401},
	} {
		if got := upgradeStatus(t, g.url(tc.path), tc.header); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
	if n := g.Server.Stats().Refused(401); n != 7 {
		t.Errorf("%d refusals counted as 401, want 7", n)
	}
	failures := g.Proxy.AuthFailures()
	if failures["missing"] != 1 || failures["expired"] != 1 || failures["audience"] != 1 || failures["signature"] != 1 || failures["algorithm"] != 2 {
		t.Errorf("failures by reason: %v", failures)
	}
	if n := g.backend(0).Leases.Load(); n > 2 {
		t.Errorf("%d leases for 2 sessions: a refused token must not lease a connection", n)
	}

	// The backend learns who it is: sub and the forwarded claim, never
	// the token.
	c := dial(t, g.url("/room?access_token="+key.token(t, "ES256", good)+"&lang=en"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	got := sb.received()
	var start struct {
		Sub    string
		Query  string
		Claims map[string]any
	}
	if err := json.Unmarshal([]byte(got[len(got)-2]), &start); err != nil {
		t.Fatal(err)
	}
	if start.Sub != "alice" || start.Query != "lang=en" || len(start.Claims) != 1 || start.Claims["tenant"] != "acme" {
		t.Fatalf("session start %s", got[len(got)-2])
	}
	// Not through session_headers either: the Authorization header that
	// carried the token stays with the gateway, even when named there.
	cb := dial(t, g.url("/room"), bearer(key.token(t, "ES256", good)))
	defer cb.Close()
	roundTrip(t, cb, websocket.TextMessage, []byte("hello again"))
	got = sb.received()
	var startB struct{ Headers map[string]string }
	if err := json.Unmarshal([]byte(got[len(got)-2]), &startB); err != nil {
		t.Fatal(err)
	}
	if _, leaked := startB.Headers["Authorization"]; leaked || startB.Headers["User-Agent"] == "" {
		t.Fatalf("session start headers %v: want User-Agent and never Authorization", startB.Headers)
	}

	// A new key file is read on reload: old tokens fail, new ones pass.
	if err := os.Rename(other.file, key.file); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := upgradeStatus(t, g.url("/"), bearer(key.token(t, "ES256", good))); got != 401 {
		t.Errorf("old key after reload: %d", got)
	}
	if got := upgradeStatus(t, g.url("/"), bearer(other.token(t, "ES256", good))); got != 101 {
		t.Errorf("new key after reload: %d", got)
	}
}
