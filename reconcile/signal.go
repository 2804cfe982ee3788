package reconcile

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// WatchSIGHUP registers for SIGHUP at once (so a HUP sent after it returns
// is never the default "terminate") and returns the goroutine that calls
// reload on every SIGHUP until its ctx ends.
func WatchSIGHUP(reload func()) func(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload()
			}
		}
	}
}
