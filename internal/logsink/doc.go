// Package logsink is a bounded, asynchronous zapcore.WriteSyncer: the
// process logger writes into it, and one goroutine of its own copies what
// was written to the real output (stderr). Event loops log, and stderr may
// be a pipe nobody reads; through a Sink a log call costs a copy into
// memory and never waits on that output.
//
// A Sink owns its queue, its writer goroutine and, for as long as it
// runs, the io.Writer it was given: nothing else may write to that writer
// while the Sink is open, or lines will interleave.
//
// Who may call what:
//
//   - Write and Dropped: any goroutine, event loops included. Write never
//     blocks on the output; when the queue is full the line is dropped and
//     counted.
//   - Sync and Close: any goroutine that may wait (at most FlushTimeout),
//     such as shutdown code. Not an event loop.
//
// Lines are never split: a line goes into the queue whole or is dropped
// whole, and lines reach the output in the order Write accepted them.
// Lines that never reach the output are counted (Dropped), and the writer
// says so in the log itself, with one line of its own after each gap.
package logsink
