// Command loadtest measures wsgate against the goroutine-per-connection
// design, nginx and no proxy at all (see loadtest/doc.go and BENCHMARKS.md).
// `loadtest goroutine-proxy` runs the goroutine baseline proxy itself, so
// the loadtest can start it as a separate process.
package main

import (
	"os"

	"github.com/wsgate/wsgate/loadtest"
	"github.com/wsgate/wsgate/loadtest/goroutineproxy"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "goroutine-proxy" {
		os.Exit(goroutineproxy.Main(os.Args[2:]))
	}
	os.Exit(loadtest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
