package looptls

import "sync"

// Buffers for plaintext read and not yet consumed, records gathered for one
// write, and pieces joined into one record: each is held only for as long
// as its bytes wait, then goes back to bufPool, so an idle session holds
// none. They come from a pool of their own: bytebufferpool sizes its
// buffers by how full they were when put back (a 1 KiB message in a
// 16 KiB buffer) and drops larger ones, so every record read would
// allocate 16 KiB of garbage (that was a fifth of the CPU of a wss://
// relay, in garbage collection).
const (
	bufSize    = 16 << 10 // a whole record's plaintext fits
	bufKeepMax = 80 << 10 // larger ones (many records at once) are not kept
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= bufKeepMax {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}
