// Package tlsconf builds the gateway's TLS configurations: the listener's
// (certificates chosen by SNI, reloaded without dropping a session,
// optional client certificates) and the one for backends over wss://
// (verified against a CA file or the system roots, optional client
// certificate). Safe for concurrent use: the certificates in force are an
// atomic pointer that Reload swaps whole.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// ErrConfig wraps every refusal of a TLS setting.
var ErrConfig = errors.New("tlsconf: bad TLS configuration")

// ParseMinVersion reads "1.2" or "1.3" ("" is 1.2).
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%w: minimum version %q: want 1.2 or 1.3", ErrConfig, s)
}

// ServerOptions are the listener's TLS settings.
type ServerOptions struct {
	CertFiles, KeyFiles []string // pairs, in order: the first is the default when SNI matches none
	ClientCA            string   // if set, clients must present a certificate it signed
	MinVersion          string   // "1.2" (default) or "1.3"
}

// Server is the listener's TLS state. Safe for concurrent use.
type Server struct {
	opts   ServerOptions
	certs  atomic.Pointer[[]tls.Certificate]
	caPool atomic.Pointer[x509.CertPool]
	config *tls.Config

	// Reloads counts reloads that put new certificates in force;
	// ReloadFailures those refused (a file missing, a key that does not
	// match), which left the previous set in force.
	Reloads, ReloadFailures atomic.Int64
	notAfter                atomic.Int64 // unix seconds: the first certificate in force to expire
}

// NewServer loads the certificates and builds the listener's
// configuration: TLS 1.2 and 1.3, ALPN http/1.1, session resumption with
// crypto/tls's automatically rotated ticket keys, the certificate chosen
// by SNI from the current set on every handshake.
func NewServer(o ServerOptions) (*Server, error) {
	if len(o.CertFiles) == 0 || len(o.CertFiles) != len(o.KeyFiles) {
		return nil, fmt.Errorf("%w: give -tls-cert and -tls-key in pairs (%d certificates, %d keys)", ErrConfig, len(o.CertFiles), len(o.KeyFiles))
	}
	minVersion, err := ParseMinVersion(o.MinVersion)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.config = &tls.Config{
		MinVersion:     minVersion,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: s.certificate,
		// Records as large as they come: the relay gathers a read's frames
		// into one write, and small first records only add overhead here.
		DynamicRecordSizingDisabled: true,
	}
	if o.ClientCA != "" {
		// The pool can change on reload: verify against the current one.
		s.config.ClientAuth = tls.RequireAnyClientCert
		s.config.VerifyConnection = s.verifyClient
	}
	return s, nil
}

// Config is the listener's configuration. Do not modify it.
func (s *Server) Config() *tls.Config { return s.config }

// Reload reads the certificate and key files (and the client CA) again and
// puts them in force for the next handshakes; sessions already open keep
// theirs. A file that does not load leaves the current set in force.
func (s *Server) Reload() error {
	certs := make([]tls.Certificate, 0, len(s.opts.CertFiles))
	for i := range s.opts.CertFiles {
		c, err := tls.LoadX509KeyPair(s.opts.CertFiles[i], s.opts.KeyFiles[i])
		if err != nil {
			return fmt.Errorf("%w: %s and %s: %v", ErrConfig, s.opts.CertFiles[i], s.opts.KeyFiles[i], err)
		}
		certs = append(certs, c)
	}
	var pool *x509.CertPool
	if s.opts.ClientCA != "" {
		var err error
		if pool, err = loadPool(s.opts.ClientCA); err != nil {
			return err
		}
	}
	s.certs.Store(&certs)
	if pool != nil {
		s.caPool.Store(pool)
	}
	first := int64(0)
	for _, c := range certs {
		if t := c.Leaf.NotAfter.Unix(); first == 0 || t < first {
			first = t
		}
	}
	s.notAfter.Store(first)
	return nil
}

// NotAfter is when the first certificate in force expires.
func (s *Server) NotAfter() time.Time { return time.Unix(s.notAfter.Load(), 0) }

// Files lists every file Reload reads (to watch them).
func (s *Server) Files() []string {
	files := append(append([]string(nil), s.opts.CertFiles...), s.opts.KeyFiles...)
	if s.opts.ClientCA != "" {
		files = append(files, s.opts.ClientCA)
	}
	return files
}

// certificate picks the first certificate of the current set that the
// client's hello supports (its SNI name, its signature schemes), else the
// first one.
func (s *Server) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *s.certs.Load()
	for i := range certs {
		if hello.SupportsCertificate(&certs[i]) == nil {
			return &certs[i], nil
		}
	}
	return &certs[0], nil
}

// verifyClient checks the client's certificate against the current CA.
func (s *Server) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsconf: a client certificate is required")
	}
	opts := x509.VerifyOptions{
		Roots:         s.caPool.Load(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: CA file: %v", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrConfig, file)
	}
	return pool, nil
}

// ClientOptions are the settings for backends over wss://.
type ClientOptions struct {
	CA                string // CA file the backends' certificates are verified against ("": the system roots)
	ServerName        string // name to verify ("": each backend URL's host)
	CertFile, KeyFile string // client certificate to present, if any
	MinVersion        string
}

// NewClient builds the configuration backend dials use; the server name
// is set per dial (Client.For).
func NewClient(o ClientOptions) (*Client, error) {
	minVersion, err := ParseMinVersion(o.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion, NextProtos: []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(256), DynamicRecordSizingDisabled: true}
	if o.CA != "" {
		if cfg.RootCAs, err = loadPool(o.CA); err != nil {
			return nil, err
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%w: give -backend-cert and -backend-key together", ErrConfig)
	}
	if o.CertFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: backend client certificate: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &Client{cfg: cfg, serverName: o.ServerName}, nil
}

// Client is the backends' TLS configuration. Safe for concurrent use.
type Client struct {
	cfg        *tls.Config
	serverName string
}

// For is the configuration to dial a backend whose URL names host.
func (c *Client) For(host string) *tls.Config {
	cfg := c.cfg.Clone()
	cfg.ServerName = host
	if c.serverName != "" {
		cfg.ServerName = c.serverName
	}
	return cfg
}
