package looptls

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"

	"github.com/panjf2000/gnet/v2"
)

// Conn is a TLS connection on its event loop, as a gnet.Conn: the reading
// and writing calls see plaintext; everything else (the descriptor,
// addresses, context, Close) is the underlying connection's. Loop-only.
type Conn struct {
	gnet.Conn             // the loop's connection: ciphertext
	tls       *tls.Conn   // record layer, keys and sequence numbers
	shim      *Shim       // tls's transport: reads gnet's buffer, gathers writes
	plain     []byte      // decrypted and not yet discarded; nil when all was read
	held      *[]byte     // plain's buffer (from bufPool) while plain is not nil
	err       error       // the read side's end (close_notify, an alert): sticky
	onError   func(error) // told once of err
	closed    bool        // Close was called
	notified  bool        // close_notify went out
}

// Handshaken is a connection whose handshake completed off the loop, on
// its way to a loop: its TLS state, the shim under it, and plaintext
// already read past what the handshaking side needed (a backend's first
// frames behind its 101), which the loop reads first. Owned by whoever
// holds it, then by the loop once attached.
type Handshaken struct {
	TLS    *tls.Conn
	Shim   *Shim
	Unread []byte
}

// Attach puts the connection on c, its connection on the loop, and
// returns it. onError, if set, hears once why reading ended (io.EOF for a
// clean close_notify); the connection then closes. crypto/tls may hold
// records it read during the handshake that no readable event will
// announce: call Peek once attached (after the callback that attached it).
func (h *Handshaken) Attach(c gnet.Conn, onError func(error)) *Conn {
	h.Shim.Attach(c)
	conn := &Conn{Conn: c, tls: h.TLS, shim: h.Shim, onError: onError}
	if len(h.Unread) > 0 {
		conn.held = getBuf()
		*conn.held = append(*conn.held, h.Unread...)
		conn.plain = *conn.held
	}
	return conn
}

// TLS is the connection's state (version, cipher, peer certificates).
func (c *Conn) TLS() tls.ConnectionState { return c.tls.ConnectionState() }

// fill decrypts every whole record gnet has buffered. If reading ended
// (close_notify, a bad record), it says so only once its own bookkeeping
// is done: whoever hears it may close the connection, which gives its
// buffers back.
func (c *Conn) fill() {
	if c.err != nil {
		return
	}
	var ended error
	for {
		if c.held == nil {
			c.held = getBuf()
		}
		b := *c.held
		if cap(b)-len(b) < 1<<10 { // tls.Read fills what room there is; the rest of a record stays with it
			b = slices.Grow(b, bufSize)
		}
		n, err := c.tls.Read(b[len(b):cap(b)])
		*c.held = b[:len(b)+n]
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				ended = err
			}
			break
		}
	}
	_ = c.shim.flush() // crypto/tls answers some records (a KeyUpdate, a bad one) by itself
	c.plain = *c.held
	if len(c.plain) == 0 {
		c.release()
	}
	if ended != nil {
		c.readEnded(ended)
	}
}

// readEnded: nothing more can be read (the peer's close_notify, or a
// record that failed, which crypto/tls answered with an alert). The
// connection is closed once the current callback returns (gnet's Close
// is queued), so what was decrypted before the end is still read, and a
// close frame among it still answered; the owner sends close_notify after
// that answer (CloseNotify), not before it.
func (c *Conn) readEnded(err error) {
	c.err = err
	if c.onError != nil {
		c.onError(err)
	}
	_ = c.Conn.Close()
}

func (c *Conn) release() {
	if c.held != nil {
		putBuf(c.held)
		c.held = nil
	}
	c.plain = nil
}

// Peek returns the first n bytes of plaintext (n <= 0: all there is).
func (c *Conn) Peek(n int) ([]byte, error) {
	c.fill()
	if n <= 0 {
		return c.plain, nil
	}
	if n > len(c.plain) {
		return nil, io.ErrShortBuffer
	}
	return c.plain[:n], nil
}

// Discard drops the first n bytes of plaintext (n <= 0: all of it).
func (c *Conn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(c.plain) {
		n = len(c.plain)
		c.release()
		return n, nil
	}
	// Keep the rest at the start of the buffer.
	rest := copy(*c.held, c.plain[n:])
	*c.held = (*c.held)[:rest]
	c.plain = *c.held
	return n, nil
}

// InboundBuffered is an upper bound of the plaintext there is to read:
// what was decrypted and not discarded, plus, when gnet holds ciphertext,
// a whole record (those bytes may complete one that crypto/tls has begun
// to read, whatever their own number). Enough to decide whether reading is
// worth trying.
func (c *Conn) InboundBuffered() int {
	if n := c.Conn.InboundBuffered(); n > 0 {
		return len(c.plain) + n + bufSize
	}
	return len(c.plain)
}

// Write encrypts p and hands its records to gnet in one write.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := c.tls.Write(p)
	if ferr := c.shim.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// Writev encrypts the pieces as one message (one record where it fits,
// not a record per piece) and hands the records to gnet in one write.
func (c *Conn) Writev(bs [][]byte) (int, error) {
	if len(bs) == 1 {
		return c.Write(bs[0])
	}
	buf := getBuf()
	defer putBuf(buf)
	for _, b := range bs {
		*buf = append(*buf, b...)
	}
	return c.Write(*buf)
}

// OutboundBuffered is the ciphertext gnet has not written yet.
func (c *Conn) OutboundBuffered() int { return c.Conn.OutboundBuffered() + c.shim.pendingLen() }

// Close sends close_notify and closes the connection.
func (c *Conn) Close() error {
	if !c.closed {
		c.CloseNotify()
		c.Gone()
	}
	return c.Conn.Close()
}

// CloseNotify sends close_notify (once): for a callback about to return
// gnet.Close, which closes the raw connection without a word (gnet writes
// what is queued first).
func (c *Conn) CloseNotify() {
	if c.closed || c.notified {
		return
	}
	c.notified = true
	_ = c.tls.CloseWrite()
	_ = c.shim.flush()
}

// Gone is gnet's OnClose reaching the connection: nothing is written to
// its descriptor again (it may belong to another connection already), and
// its buffers go back to their pools.
func (c *Conn) Gone() {
	c.closed = true
	c.shim.drop()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.release()
}

// ReadErr is why reading ended, nil while it goes on.
func (c *Conn) ReadErr() error { return c.err }
