// Command loadtest measures wsgate against the goroutine-per-connection
// design, nginx and no proxy at all (see loadtest/doc.go and BENCHMARKS.md).
// `loadtest goroutine-proxy` runs the goroutine baseline proxy itself, so
// the loadtest can start it as a separate process; `loadtest big-message`
// measures the RSS a large message costs while it streams.
package main

import (
	"os"

	"github.com/wsgate/wsgate/loadtest"
	"github.com/wsgate/wsgate/loadtest/goroutineproxy"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "goroutine-proxy":
			os.Exit(goroutineproxy.Main(os.Args[2:]))
		case "big-message":
			os.Exit(loadtest.BigMessageMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(loadtest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
