package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// sighupWatcher asks the configuration source to reload on every SIGHUP.
// Its run goroutine is owned by runGateway, which ends it (ctx) before the
// gateway stops.
type sighupWatcher struct {
	hup    chan os.Signal // size 1: HUPs that come during a reload coalesce
	reload func() bool    // false: nothing to reload (the configuration came from flags)
	log    *zap.Logger
}

// watchSIGHUP registers for SIGHUP at once, so a HUP sent after it returns
// is delivered to run (main's own registration keeps any HUP from ending
// the process), and returns the watcher; start its run goroutine.
func watchSIGHUP(reload func() bool, log *zap.Logger) *sighupWatcher {
	w := &sighupWatcher{hup: make(chan os.Signal, 1), reload: reload, log: log}
	signal.Notify(w.hup, syscall.SIGHUP)
	return w
}

// run is the watcher's goroutine: it calls reload on every SIGHUP until
// ctx ends, then stops receiving the signal and marks wg done.
func (w *sighupWatcher) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	defer signal.Stop(w.hup)
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("SIGHUP watcher panicked; SIGHUP no longer reloads the configuration", zap.Any("panic", r))
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.hup:
			if !w.reload() {
				w.log.Info("SIGHUP: the configuration comes from flags; nothing to reload")
			}
		}
	}
}
