package config

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// FileSource reads a YAML configuration file and reapplies it when it
// changes (checked every PollInterval) or when Reload is called (SIGHUP).
type FileSource struct {
	Path         string
	Applier      *Applier
	PollInterval time.Duration // default 250 ms
	// Settle is how long a changed file must stay unchanged before it is
	// read, so a file being written is not read half-way (default 50 ms;
	// an atomic rename is still the safe way to replace it).
	Settle time.Duration
	Log    *zap.Logger

	reload chan struct{} // size 1: reload requests coalesce
	seen   atomic.Pointer[fileStamp]
}

// NewFileSource returns a source for the file at path.
func NewFileSource(path string, a *Applier, log *zap.Logger) *FileSource {
	if log == nil {
		log = zap.NewNop()
	}
	return &FileSource{Path: path, Applier: a, Log: log, reload: make(chan struct{}, 1)}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Load reads and applies the file once. A file that changes while it is
// read is not applied (the next poll reads it again).
func (f *FileSource) Load() error {
	before, err := stampOf(f.Path)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(f.Path)
	}
	if err != nil {
		err = fmt.Errorf("config: file: %w", err)
		f.Applier.noteFailure(err)
		f.Log.Warn("configuration file unreadable; the last good version stays", zap.String("path", f.Path), zap.Error(err))
		return err
	}
	if after, err := stampOf(f.Path); err != nil || after != before {
		return fmt.Errorf("config: file %s changed while read", f.Path)
	}
	f.seen.Store(&before)
	c, err := ParseYAML(data)
	if err != nil {
		f.Applier.noteFailure(err)
		f.Log.Warn("configuration file rejected; the last good version stays", zap.String("path", f.Path), zap.Error(err))
		return err
	}
	_, err = f.Applier.Apply(c, "file:"+f.Path)
	return err
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// Reload asks Run to read the file now (SIGHUP). Never blocks.
func (f *FileSource) Reload() {
	select {
	case f.reload <- struct{}{}:
	default:
	}
}

// Run watches the file until ctx ends. It is the named goroutine of the
// file source. A change is applied once the file has stayed the same for
// Settle: a file rewritten every 200 ms still applies within a poll or
// two, where waiting for a whole unchanged poll applied nothing.
func (f *FileSource) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			f.Log.Error("config file watcher panicked; the file is no longer watched", zap.Any("panic", r))
		}
	}()
	interval := f.PollInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	settle := f.Settle
	if settle <= 0 {
		settle = 50 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	missing := false // reported once per disappearance
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.reload:
			f.Log.Info("reloading configuration", zap.String("path", f.Path))
			_ = f.Load()
		case <-t.C:
			st, err := stampOf(f.Path)
			if err != nil {
				if !missing {
					f.Applier.noteFailure(fmt.Errorf("config: file: %w", err))
					f.Log.Warn("configuration file missing; the last good version stays", zap.String("path", f.Path), zap.Error(err))
				}
				missing = true
				continue
			}
			missing = false
			if old := f.seen.Load(); old != nil && *old == st {
				continue
			}
			select { // let the writer finish
			case <-ctx.Done():
				return
			case <-time.After(settle):
			}
			if again, err := stampOf(f.Path); err != nil || again != st {
				continue // still being written: the next poll looks again
			}
			_ = f.Load()
		}
	}
}
