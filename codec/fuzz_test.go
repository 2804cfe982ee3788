package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Seed corpora beyond the f.Add calls live in testdata/fuzz/<FuzzName>/.

// rfcFrames are the frame examples of RFC 6455 section 5.7, and headers of
// each length encoding.
var rfcFrames = [][]byte{
	{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
	maskedHello,
	{0x01, 0x03, 'H', 'e', 'l'},
	{0x80, 0x02, 'l', 'o'},
	{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'},
	{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
	{0x82, 0x7e, 0x01, 0x00},
	{0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00},
	{0x82, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4},
	{0x88, 0x82, 1, 2, 3, 4, 0x02, 0xea},
}

func FuzzParseUpgrade(f *testing.F) {
	f.Add([]byte(rfcRequest), uint(0), uint16(0))
	f.Add([]byte(rfcRequest), uint(40), uint16(0))
	f.Add(append([]byte(rfcRequest), maskedHello...), uint(len(rfcRequest)-2), uint16(0))
	f.Add([]byte(rfcRequest), uint(7), uint16(64))
	f.Add([]byte(getRequest(with("Sec-WebSocket-Version: 8")...)), uint(3), uint16(0))
	f.Add([]byte(request("POST /chat HTTP/1.1", baseHeaders...)), uint(0), uint16(0))
	f.Add([]byte(getRequest(plus("Sec-WebSocket-Extensions: permessage-deflate")...)), uint(100), uint16(0))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint(17), uint16(18))

	f.Fuzz(func(t *testing.T, data []byte, cut uint, limit uint16) {
		max := int(limit)
		eff := max
		if eff <= 0 {
			eff = DefaultMaxHeaderBytes
		}
		var whole HeaderScanner
		n, err := whole.Scan(data, max)
		end := bytes.Index(data[:min(len(data), eff)], crlfcrlf)
		switch {
		case err == nil:
			if end < 0 || n != end+4 || n > len(data) || n > eff {
				t.Fatalf(
					"Scan = %d, first end at %d (limit %d)",
					n, end, eff,
				)
			}
		case errors.Is(err, ErrNeedMore):
			if n != 0 || end >= 0 || len(data) >= eff {
				t.Fatalf(
					"ErrNeedMore with %d bytes, end at %d (limit %d)",
					len(data), end, eff,
				)
			}
		default:
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != 431 || n != 0 || end >= 0 || len(data) < eff {
				t.Fatalf(
					"Scan error %v with %d bytes, end at %d (limit %d)",
					err, len(data), end, eff,
				)
			}
		}

		// The same input in two pieces, as a growing network buffer.
		k := int(cut % uint(len(data)+1))
		var split HeaderScanner
		n2, err2 := split.Scan(data[:k], max)
		if errors.Is(err2, ErrNeedMore) {
			n2, err2 = split.Scan(data, max)
		}
		if n2 != n || (err == nil) != (err2 == nil) || errors.Is(err, ErrNeedMore) != errors.Is(err2, ErrNeedMore) {
			t.Fatalf(
				"cut at %d: Scan = %d, %v; whole: %d, %v",
				k, n2, err2, n, err,
			)
		}
		if err != nil {
			return
		}

		block := bytes.Clone(data[:n])
		req, err := ParseUpgrade(block)
		if err != nil {
			var he *HandshakeError
			if !errors.As(err, &he) || req != nil {
				t.Fatalf(
					"ParseUpgrade error %v (%T) with request %v",
					err, err, req,
				)
			}
			switch he.Status {
			case 400, 405, 426:
			default:
				t.Fatalf(
					"ParseUpgrade status %d",
					he.Status,
				)
			}
			out := AppendHTTPError(nil, he)
			var s HeaderScanner
			if m, err := s.Scan(out, 0); err != nil || string(out[m:]) != he.Reason+"\n" {
				t.Fatalf(
					"AppendHTTPError = %q",
					out,
				)
			}
			return
		}
		if len(req.Key) != 24 || !validKey(req.Key) || req.Host == "" || req.URI == "" || req.URI[0] != '/' {
			t.Fatalf(
				"accepted request %+v",
				req,
			)
		}
		// The request owns its strings.
		key := req.Key
		for i := range block {
			block[i] = 0
		}
		if req.Key != key || !validKey(req.Key) {
			t.Fatalf(
				"request key changed with its buffer",
			)
		}
		protocol := SelectProtocol(req.Protocols, req.Protocols)
		out := AppendAccept(nil, req.Key, protocol)
		var s HeaderScanner
		if m, err := s.Scan(out, 0); err != nil || m != len(out) {
			t.Fatalf(
				"AppendAccept = %q: Scan %d, %v",
				out, m, err,
			)
		}
		got, status, err := ParseClientResponse(out, &ClientRequest{Key: req.Key, Protocols: req.Protocols})
		if err != nil || status != 101 || got != protocol {
			t.Fatalf(
				"ParseClientResponse(%q) = %q, %d, %v",
				out, got, status, err,
			)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, frame := range rfcFrames {
		f.Add(frame, frame[1]&0x80 == 0, int64(0))
		f.Add(frame, frame[1]&0x80 == 0, int64(4))
	}
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, false, int64(0))
	f.Add([]byte{0x83, 0x80, 1, 2, 3, 4}, false, int64(0))
	f.Add([]byte{0xc1, 0x80, 1, 2, 3, 4}, false, int64(0))
	f.Add([]byte{0x09, 0x00}, true, int64(0))

	f.Fuzz(func(t *testing.T, data []byte, client bool, maxPayload int64) {
		role := RoleServer
		if client {
			role = RoleClient
		}
		h, n, err := ParseHeader(data, role, maxPayload)
		switch {
		case err == nil:
		case errors.Is(err, ErrNeedMore):
			if n != 0 || len(data) >= MaxHeaderSize {
				t.Fatalf(
					"ErrNeedMore with n=%d and %d bytes",
					n, len(data),
				)
			}
			// More bytes always settle it.
			padded := append(bytes.Clone(data), make([]byte, MaxHeaderSize)...)
			if _, _, err := ParseHeader(padded, role, maxPayload); errors.Is(err, ErrNeedMore) {
				t.Fatalf(
					"ErrNeedMore with %d bytes",
					len(padded),
				)
			}
			// gobwas/ws runs out of input too.
			if _, rerr := ws.ReadHeader(bytes.NewReader(data)); rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
				t.Fatalf(
					"ws.ReadHeader read a header from %x: %v",
					data, rerr,
				)
			}
			return
		default:
			var pe *ProtocolError
			if !errors.As(err, &pe) || n != 0 {
				t.Fatalf(
					"error %v (%T), n=%d",
					err, err, n,
				)
			}
			switch pe.Code {
			case CloseProtocolError:
			case CloseMessageTooBig:
				if maxPayload <= 0 || !h.OpCode.IsData() || h.Length <= maxPayload {
					t.Fatalf(
						"1009 for %+v with maxPayload %d",
						h, maxPayload,
					)
				}
			default:
				t.Fatalf(
					"close code %d",
					pe.Code,
				)
			}
			return
		}

		if n < 2 || n > MaxHeaderSize || n > len(data) || n < HeaderSize(h) {
			t.Fatalf(
				"n = %d for %+v from %d bytes",
				n, h, len(data),
			)
		}
		if h.Rsv != 0 || h.OpCode.IsReserved() || h.Length < 0 || h.Masked != (role == RoleServer) ||
			(h.OpCode.IsControl() && (!h.Fin || h.Length > 125)) ||
			(maxPayload > 0 && h.OpCode.IsData() && h.Length > maxPayload) {
			t.Fatalf(
				"accepted %+v (role %d, maxPayload %d)",
				h, role, maxPayload,
			)
		}
		// gobwas/ws reads the same header.
		ref, rerr := ws.ReadHeader(bytes.NewReader(data))
		if rerr != nil || ref != h {
			t.Fatalf(
				"ws.ReadHeader = %+v, %v; ParseHeader %+v",
				ref, rerr, h,
			)
		}
		// Every strict prefix needs more.
		for i := 0; i < n; i++ {
			if _, m, err := ParseHeader(data[:i], role, maxPayload); m != 0 || !errors.Is(err, ErrNeedMore) {
				t.Fatalf(
					"prefix %d of %d: %d, %v",
					i, n, m, err,
				)
			}
		}
		// Re-encoding gives a header that parses to the same value.
		var buf [MaxHeaderSize]byte
		m := PutHeader(buf[:], h)
		if m != HeaderSize(h) {
			t.Fatalf(
				"PutHeader wrote %d bytes, HeaderSize %d",
				m, HeaderSize(h),
			)
		}
		h2, n2, err := ParseHeader(buf[:m], role, maxPayload)
		if err != nil || n2 != m || h2 != h {
			t.Fatalf(
				"re-encoded %x parses to %+v, %d, %v; want %+v",
				buf[:m], h2, n2, err, h,
			)
		}
	})
}

func FuzzUTF8(f *testing.F) {
	for _, s := range utf8Texts {
		f.Add([]byte(s), uint(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		want := utf8.Valid(data)
		if got := ValidUTF8(data); got != want {
			t.Fatalf(
				"ValidUTF8(%q) = %v, want %v",
				data, got, want,
			)
		}
		k := int(cut % uint(len(data)+1))
		var v UTF8Validator
		ok1 := v.Write(data[:k])
		ok2 := v.Write(data[k:])
		if !ok1 && ok2 {
			t.Fatalf(
				"%q cut at %d: second Write accepted after a rejection",
				data, k,
			)
		}
		if got := ok2 && v.Complete(); got != want {
			t.Fatalf(
				"%q cut at %d: %v, want %v",
				data, k, got, want,
			)
		}
		// A prefix is rejected only if no valid text starts with it:
		// any prefix of valid text passes Write.
		if want && !ok1 {
			t.Fatalf(
				"%q: valid text, prefix %d rejected",
				data, k,
			)
		}
	})
}

func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8})
	f.Add(closePayload(CloseGoingAway, "bye"))
	f.Add(closePayload(4000, "κόσμε"))
	f.Add(closePayload(CloseNoStatus, ""))
	f.Add(closePayload(CloseNormal, "\xed\xa0\x80"))
	f.Add(closePayload(CloseNormal, string(bytes.Repeat([]byte("€"), 60))))

	f.Fuzz(func(t *testing.T, data []byte) {
		code, reason, err := ParseClosePayload(data)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf(
					"error %v (%T)",
					err, err,
				)
			}
			want := CloseProtocolError
			if len(data) >= 2 && ValidCloseCode(ws.StatusCode(uint16(data[0])<<8|uint16(data[1]))) {
				want = CloseInvalidPayload
				if utf8.Valid(data[2:]) {
					t.Fatalf(
						"%x refused with a valid code and reason: %v",
						data, err,
					)
				}
			}
			if pe.Code != want || len(data) == 0 {
				t.Fatalf(
					"%x: close %d, want %d",
					data, pe.Code, want,
				)
			}
			return
		}
		if len(data) == 0 {
			if code != CloseNoStatus || reason != nil {
				t.Fatalf(
					"empty payload: %d, %q",
					code, reason,
				)
			}
			return
		}
		if !ValidCloseCode(code) || !utf8.Valid(reason) || !bytes.Equal(reason, data[2:]) {
			t.Fatalf(
				"%x accepted as %d, %q",
				data, code, reason,
			)
		}
		// Re-encoding gives the same payload when the reason fits.
		if len(reason) <= MaxCloseReason {
			buf := make([]byte, len(data))
			if m := PutClosePayload(buf, code, string(reason)); !bytes.Equal(buf[:m], data) {
				t.Fatalf(
					"PutClosePayload = %x, want %x",
					buf[:m], data,
				)
			}
		}
		// A whole frame round trip keeps the code and a prefix of the reason.
		frame := AppendCloseFrame(nil, code, string(reason))
		h, n, err := ParseHeader(frame, RoleClient, 0)
		if err != nil || h.OpCode != ws.OpClose || n+int(h.Length) != len(frame) {
			t.Fatalf(
				"close frame %x: %+v, %v",
				frame, h, err,
			)
		}
		code2, reason2, err := ParseClosePayload(frame[n:])
		if err != nil || code2 != code || !bytes.HasPrefix(reason, reason2) || len(reason2) < min(len(reason), MaxCloseReason-3) {
			t.Fatalf(
				"close frame %x parses to %d, %q, %v",
				frame, code2, reason2, err,
			)
		}
	})
}

// FuzzSplitFrame splits frames in both directions: client frames as the
// server reads them, and backend frames as the gateway (a client) reads
// them, with and without limits. Whatever the bytes, it never panics, a
// whole frame lies within the input, and a need for more names a size
// past the input that, once buffered, settles it.
func FuzzSplitFrame(f *testing.F) {
	for _, frame := range rfcFrames {
		f.Add(frame, frame[1]&0x80 == 0, int64(0))
		f.Add(frame, frame[1]&0x80 == 0, int64(3))
	}
	f.Add([]byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, int64(0))
	f.Add([]byte{0x82, 0x7f, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00}, true, int64(1<<20))
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, false, int64(-1))

	f.Fuzz(func(t *testing.T, data []byte, client bool, maxPayload int64) {
		role := RoleServer
		if client {
			role = RoleClient
		}
		h, hn, total, err := SplitFrame(data, role, maxPayload)
		switch {
		case err == nil:
			if hn < 2 || hn > MaxHeaderSize || total != hn+int(h.Length) || total > len(data) {
				t.Fatalf("%x: hn %d total %d for %+v", data, hn, total, h)
			}
		case errors.Is(err, ErrNeedMore):
			if total <= len(data) {
				t.Fatalf("%x: need %d, have %d", data, total, len(data))
			}
			if total-len(data) > 1<<16 {
				return // a big frame on its way; its length passed the limit
			}
			padded := append(bytes.Clone(data), make([]byte, total-len(data))...)
			if _, _, total2, err := SplitFrame(padded, role, maxPayload); err != nil && (!errors.Is(err, ErrNeedMore) || total2 <= total) {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("%x padded to %d: %v", data, total, err)
				}
			}
		default:
			var pe *ProtocolError
			if !errors.As(err, &pe) || total != 0 || (pe.Code != CloseProtocolError && pe.Code != CloseMessageTooBig) {
				t.Fatalf("%x: total %d, err %v", data, total, err)
			}
		}
	})
}
