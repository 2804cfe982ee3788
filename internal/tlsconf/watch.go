package tlsconf

import (
	"context"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// DefaultWatchInterval is how often Watch looks at the certificate files.
const DefaultWatchInterval = time.Second

// fileStamp is what tells a file changed: its identity (a renamed-in
// replacement has another inode), size and modification time.
type fileStamp struct {
	ino, size, mtime int64
	missing          bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{missing: true}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
}

// Watch reloads the certificates when their files change, until ctx
// ends: it looks every interval (DefaultWatchInterval if 0), and reloads
// once the files have stayed the same for one more look, so a certificate
// and key written one after the other are read as a pair. A reload that
// fails keeps the certificates in force and is logged; it is tried again
// at the next change. Run it on a goroutine of its own.
func (s *Server) Watch(ctx context.Context, interval time.Duration, log *zap.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	files := s.Files()
	stamps := func() []fileStamp {
		out := make([]fileStamp, len(files))
		for i, f := range files {
			out[i] = stampOf(f)
		}
		return out
	}
	loaded := stamps()
	var seen []fileStamp // a change, waiting to settle
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := stamps()
		switch {
		case equalStamps(now, loaded):
			seen = nil
		case seen == nil || !equalStamps(now, seen):
			seen = now // changed: look once more before reading
		default:
			loaded, seen = now, nil
			_ = s.ReloadAndLog(log, "files changed") // logged and counted
		}
	}
}

// ReloadAndLog reloads (see Reload), counts the outcome and logs it with
// why (a SIGHUP, files changed). The error is Reload's.
func (s *Server) ReloadAndLog(log *zap.Logger, why string) error {
	if err := s.Reload(); err != nil {
		s.ReloadFailures.Add(1)
		log.Warn("TLS certificates not reloaded; the previous ones stay in force", zap.String("why", why), zap.Error(err))
		return err
	}
	s.Reloads.Add(1)
	log.Info("TLS certificates reloaded", zap.String("why", why), zap.Time("first_expiry", s.NotAfter()))
	return nil
}

func equalStamps(a, b []fileStamp) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
