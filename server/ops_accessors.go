package server

// Read-only accessors for the operating side (package admin): pure reads
// of atomics the server already keeps.

// ShuttingDown reports whether the server refuses new sessions because it
// is shutting down (Shutdown was called). Safe for concurrent use.
func (s *Server) ShuttingDown() bool { return s.shuttingDown.Load() }

// SetSessionEnd installs Config.OnSessionEnd. Call it before Start.
func (s *Server) SetSessionEnd(fn func(*SessionRecord)) { s.cfg.OnSessionEnd = fn }

// PausedNow is the number of connections (client and backend) not read
// right now for backpressure, all shards. Safe for concurrent use.
func (s *Server) PausedNow() int64 {
	var n int64
	for _, sh := range s.loops {
		n += sh.flow.count.Load()
	}
	return n
}
