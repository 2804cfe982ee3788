package tlsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/testcert"
)

func TestServerRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA("tlsconf test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("a.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.Write(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no PEM here"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]ServerOptions{
		"no certificate":      {},
		"a key short":         {CertFiles: []string{cert, cert}, KeyFiles: []string{key}},
		"missing file":        {CertFiles: []string{cert}, KeyFiles: []string{filepath.Join(dir, "nope.pem")}},
		"key of another cert": {CertFiles: []string{cert}, KeyFiles: []string{empty}},
		"version 1.1":         {CertFiles: []string{cert}, KeyFiles: []string{key}, MinVersion: "1.1"},
		"CA without PEM":      {CertFiles: []string{cert}, KeyFiles: []string{key}, ClientCA: empty},
	} {
		if _, err := NewServer(o); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	s, err := NewServer(ServerOptions{CertFiles: []string{cert}, KeyFiles: []string{key}, MinVersion: "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Config().MinVersion != tls.VersionTLS13 {
		t.Errorf("min version %x", s.Config().MinVersion)
	}
	// A name no certificate holds still gets the first one (the client
	// decides whether to trust it).
	got, err := s.certificate(&tls.ClientHelloInfo{ServerName: "other.test"})
	if err != nil || got.Leaf.DNSNames[0] != "a.test" {
		t.Errorf("fallback certificate: %v %v", got, err)
	}
}

func TestClientSettings(t *testing.T) {
	if _, err := NewClient(ClientOptions{CertFile: "x.pem"}); !errors.Is(err, ErrConfig) {
		t.Errorf("a certificate without its key: %v", err)
	}
	c, err := NewClient(ClientOptions{ServerName: "backend.internal"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.For("10.0.0.1").ServerName; got != "backend.internal" {
		t.Errorf("server name %q", got)
	}
	c, _ = NewClient(ClientOptions{})
	if got := c.For("b.example").ServerName; got != "b.example" {
		t.Errorf("server name %q", got)
	}
}
