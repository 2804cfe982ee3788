// Command devcert makes a throwaway certificate authority and a server
// certificate it signed, for the TLS demo (`make run TLS=1`) and local
// tests: never for production.
//
//	devcert -dir .demo/tls -name 127.0.0.1 -name localhost
//
// writes ca.pem, server.pem and server-key.pem (kept if they exist and
// are still valid for a day) and prints how to trust the CA.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wsgate/wsgate/internal/flagvalue"
	"github.com/wsgate/wsgate/internal/testcert"
)

func main() {
	dir := flag.String("dir", ".demo/tls", "directory for ca.pem, server.pem and server-key.pem")
	var names flagvalue.StringList
	flag.Var(&names, "name", "DNS name or IP address of the server certificate (repeatable; default 127.0.0.1 and localhost)")
	flag.Parse()
	if len(names) == 0 {
		names = flagvalue.StringList{"127.0.0.1", "localhost"}
	}
	if err := run(*dir, names); err != nil {
		fmt.Fprintln(os.Stderr, "devcert:", err)
		os.Exit(1)
	}
}

func run(dir string, names []string) error {
	caFile, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if !stillValid(cert, key) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		ca, err := testcert.NewCA("wsgate demo CA (throwaway)")
		if err != nil {
			return err
		}
		leaf, err := ca.Server(names...)
		if err != nil {
			return err
		}
		if _, err := ca.Write(dir, "ca"); err != nil {
			return err
		}
		if _, _, err := leaf.Write(dir, "server"); err != nil {
			return err
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	spki := sha256.Sum256(pair.Leaf.RawSubjectPublicKeyInfo)
	fmt.Printf(`devcert: throwaway CA %s, server certificate %s for %v
  trust it:  curl --cacert %[1]s ... | NODE_EXTRA_CA_CERTS=%[1]s node ... | SSL_CERT_FILE=%[1]s python3 ...
             chromium --ignore-certificate-errors-spki-list=%[4]s
             system-wide (Debian): sudo cp %[1]s /usr/local/share/ca-certificates/wsgate-demo.crt && sudo update-ca-certificates
`, caFile, cert, append(pair.Leaf.DNSNames, fmt.Sprint(pair.Leaf.IPAddresses)), base64.StdEncoding.EncodeToString(spki[:]))
	return nil
}

// stillValid: the pair loads and its certificate is good for a day more.
func stillValid(cert, key string) bool {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return false
	}
	return time.Until(pair.Leaf.NotAfter) > 24*time.Hour && pair.Leaf.KeyUsage&x509.KeyUsageDigitalSignature != 0
}
