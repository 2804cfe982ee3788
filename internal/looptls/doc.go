// Package looptls runs a TLS connection on an event loop after its
// handshake, with no goroutine and no blocking read.
//
// crypto/tls cannot resume a handshake that ran out of bytes, so the
// handshake runs off the loop, on an ordinary blocking connection (a Shim
// in handshake mode). After it, the Shim is attached to the connection's
// gnet.Conn on its loop: crypto/tls then reads records from what gnet has
// buffered, and when nothing is left the Shim answers with a temporary
// error, which crypto/tls does not keep (the next Read tries again);
// records it writes are gathered and go out in one write.
//
// Conn wraps the loop's gnet.Conn so the WebSocket code sees plaintext
// with the gnet calls it already uses (Peek, Discard, InboundBuffered,
// Write, Writev, OutboundBuffered): whatever reads or writes a plain
// connection reads and writes a TLS one. Plaintext is held in a pooled
// buffer only while some of it is unread, and gathered records only until
// the write: an idle session keeps none of ours. crypto/tls keeps its own
// record input and output buffers for the connection's life, sized by the
// largest record read and written (up to about 17 KiB each once a
// full-size record went through); only a record layer of our own after
// the handshake would drop them.
//
// A Conn and its Shim are owned by the connection's event loop once
// attached (Loop-only); before that, by the goroutine that runs the
// handshake.
package looptls
