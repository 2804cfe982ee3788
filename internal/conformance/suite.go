package conformance

import (
	"crypto/tls"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"
)

// Target is the endpoint under test and what it can be held to.
type Target struct {
	// Addr is the host:port to dial.
	Addr string
	// Host is the Host header of the requests (default Addr); Path their
	// request target (default "/").
	Host, Path string

	// MaxMessageBytes is the endpoint's limit on a whole message: a message
	// of exactly this size is echoed, one byte more is closed 1009. Zero:
	// unknown, the cases that need it are skipped.
	MaxMessageBytes int64
	// MaxFrameBytes is its limit on one frame's payload (close 1009 from
	// the header past it); zero means MaxMessageBytes.
	MaxFrameBytes int64
	// MaxHeaderBytes is its limit on the upgrade request's header block,
	// final CRLFCRLF included: a block of exactly this size is accepted,
	// one byte more is answered 431. Zero: unknown, those cases are skipped.
	MaxHeaderBytes int
	// CloseTimeout is how long the endpoint waits for a close reply. A
	// server must close TCP at once after answering a client's close or
	// failing the connection, so the suite allows it at most
	// min(1s, CloseTimeout/2) to do so: a server that merely waits for the
	// client to close fails. Zero: 1s.
	CloseTimeout time.Duration
	// Subprotocols are the subprotocols the endpoint is configured with
	// (any order); nil means none, and then none may ever be selected.
	Subprotocols []string
	// IOTimeout bounds every read and write (default DefaultTimeout).
	IOTimeout time.Duration
	// TLS, if set, is the client configuration: every case runs over TLS.
	TLS *tls.Config

	// NoEcho: the endpoint does not echo messages back whole; the cases
	// that rely on echoes are skipped.
	NoEcho bool
	// RefusesUnknownSubprotocols: a request offering only subprotocols the
	// endpoint does not speak is refused 400 (a gateway that must not open
	// a session its backend did not agree to), rather than upgraded with
	// none selected (what RFC 6455 allows).
	RefusesUnknownSubprotocols bool
	// RepliesBeforeFailure: the endpoint is a relay whose backend answers
	// each frame as it comes. When the client breaks the protocol, the
	// relay first lets through the backend's replies to the frames sent
	// before the bad one (as the backend alone would have sent them), then
	// fails the connection: the failure cases skip data frames before the
	// close they expect.
	RepliesBeforeFailure bool
	// Skip lists cases to skip, as path.Match patterns over the case name
	// below Run's test ("handshake/header_block_at_limit_101",
	// "frames/echo_*_1048576B", ...).
	Skip []string
}

// needs are what a case requires of the target.
type needs uint8

const (
	needEcho needs = 1 << iota
	needMessageLimit
	needHeaderLimit
	needSubprotocols
	needNoSubprotocols
	needFrameBelowMessage // MaxFrameBytes < MaxMessageBytes
)

// testCase is one named case of the suite.
type testCase struct {
	name  string
	needs needs
	run   func(t *testing.T, s *suite)
}

// suite is a Target with its derived values.
type suite struct {
	Target
	maxFrame   int64         // effective frame limit (0: unknown)
	closeBound time.Duration // how long the server may take to close TCP when it must
}

// Run runs every case against target, each as a parallel subtest; it
// returns when all have finished.
func Run(t *testing.T, target Target) {
	t.Helper()
	if target.Addr == "" {
		t.Fatal("conformance: Target.Addr is empty")
	}
	s := &suite{Target: target}
	if s.Host == "" {
		s.Host = s.Addr
	}
	if s.IOTimeout <= 0 {
		s.IOTimeout = DefaultTimeout
	}
	s.maxFrame = s.MaxFrameBytes
	if s.maxFrame <= 0 || (s.MaxMessageBytes > 0 && s.maxFrame > s.MaxMessageBytes) {
		s.maxFrame = s.MaxMessageBytes
	}
	s.closeBound = time.Second
	if s.CloseTimeout > 0 && s.CloseTimeout/2 < s.closeBound {
		s.closeBound = s.CloseTimeout / 2
	}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"handshake", s.handshakeCases()},
		{"frames", s.frameCases()},
		{"pipelined", s.pipelinedCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, tc := range g.cases {
				if seen[tc.name] {
					t.Fatalf("conformance: duplicate case name %q", tc.name)
				}
				seen[tc.name] = true
				t.Run(tc.name, func(t *testing.T) {
					if why := s.skip(g.name+"/"+tc.name, tc.needs); why != "" {
						t.Skip(why)
					}
					t.Parallel()
					tc.run(t, s)
				})
			}
		})
	}
}

func (s *suite) skip(name string, n needs) string {
	for _, p := range s.Skip {
		if ok, _ := path.Match(p, name); ok {
			return "skipped by Target.Skip " + p
		}
	}
	switch {
	case n&needEcho != 0 && s.NoEcho:
		return "needs an echoing endpoint (Target.NoEcho)"
	case n&needMessageLimit != 0 && s.MaxMessageBytes <= 0:
		return "needs Target.MaxMessageBytes"
	case n&needHeaderLimit != 0 && s.MaxHeaderBytes <= 0:
		return "needs Target.MaxHeaderBytes"
	case n&needSubprotocols != 0 && len(s.Subprotocols) == 0:
		return "needs Target.Subprotocols"
	case n&needNoSubprotocols != 0 && len(s.Subprotocols) > 0:
		return "only for an endpoint without subprotocols"
	case n&needFrameBelowMessage != 0 && (s.maxFrame <= 0 || s.maxFrame >= s.MaxMessageBytes):
		return "needs a frame limit below the message limit"
	}
	return ""
}

// dial opens a TCP connection to the target.
func (s *suite) dial(t *testing.T) *Client { return DialTLS(t, s.Addr, s.IOTimeout, s.TLS) }

// request is a valid upgrade request for the target.
func (s *suite) request() *Request { return NewRequest(s.Host, s.Path) }

// open returns a client that completed the handshake.
func (s *suite) open(t *testing.T) *Client {
	t.Helper()
	c := s.dial(t)
	c.Handshake(s.request())
	return c
}

// refused sends req and requires status, then TCP closed by the server.
func (s *suite) refused(t *testing.T, req *Request, status int) *Response {
	t.Helper()
	c := s.dial(t)
	c.Write(req.Bytes())
	return c.ExpectRefusal(status, s.closeBound)
}

// --- handshake ---------------------------------------------------------------

func (s *suite) handshakeCases() []testCase {
	refusal := func(name string, status int, edit func(r *Request)) testCase {
		return testCase{name: name, run: func(t *testing.T, s *suite) {
			req := s.request()
			edit(req)
			s.refused(t, req, status)
		}}
	}
	accepted := func(name string, edit func(r *Request)) testCase {
		return testCase{name: name, run: func(t *testing.T, s *suite) {
			req := s.request()
			edit(req)
			c := s.dial(t)
			c.Handshake(req)
			s.checkAlive(t, c)
		}}
	}
	cases := []testCase{
		{name: "valid_upgrade_101", run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			resp := c.Handshake(req)
			if p := resp.Values("Sec-WebSocket-Protocol"); len(p) > 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q selected, but none was offered", p)
			}
			s.checkAlive(t, c)
		}},
		{name: "method_post_405", run: methodRefused("POST")},
		{name: "method_put_405", run: methodRefused("PUT")},
		{name: "version_8_426", run: func(t *testing.T, s *suite) {
			req := s.request().Set("Sec-WebSocket-Version", "8")
			resp := s.refused(t, req, 426)
			if !resp.HasToken("Sec-WebSocket-Version", "13") {
				t.Errorf("426 without \"Sec-WebSocket-Version: 13\" (RFC 6455 section 4.4): %v", resp)
			}
		}},
		{name: "missing_version_400_or_426", run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			c.Write(s.request().Del("Sec-WebSocket-Version").Bytes())
			resp, err := c.ReadResponse()
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 400 && resp.Status != 426 {
				t.Fatalf("status %d, want 400 or 426 (%v)", resp.Status, resp)
			}
			c.ExpectTCPClosed(s.closeBound)
		}},
		refusal("missing_host_400", 400, func(r *Request) { r.Del("Host") }),
		refusal("empty_host_400", 400, func(r *Request) { r.Set("Host", "") }),
		refusal("missing_upgrade_400", 400, func(r *Request) { r.Del("Upgrade") }),
		refusal("upgrade_not_websocket_400", 400, func(r *Request) { r.Set("Upgrade", "h2c") }),
		refusal("missing_connection_400", 400, func(r *Request) { r.Del("Connection") }),
		refusal("connection_without_upgrade_400", 400, func(r *Request) { r.Set("Connection", "keep-alive") }),
		refusal("missing_key_400", 400, func(r *Request) { r.Del("Sec-WebSocket-Key") }),
		refusal("bad_key_not_base64_400", 400, func(r *Request) { r.Set("Sec-WebSocket-Key", "!!!!not-a-base64-key!!!=") }),
		refusal("bad_key_8_bytes_400", 400, func(r *Request) { r.Set("Sec-WebSocket-Key", "AAECAwQFBgc=") }),
		refusal("bad_key_20_bytes_400", 400, func(r *Request) { r.Set("Sec-WebSocket-Key", "AAECAwQFBgcICQoLDA0ODxAREhM=") }),
		refusal("http_1_0_400", 400, func(r *Request) { r.Proto = "HTTP/1.0" }),
		accepted("connection_token_list_mixed_case_101", func(r *Request) { r.Set("Connection", "keep-alive, UpGrade") }),
		accepted("upgrade_mixed_case_101", func(r *Request) { r.Set("Upgrade", "WebSocket") }),
		{name: "permessage_deflate_offer_declined_101", run: func(t *testing.T, s *suite) {
			req := s.request().Add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
			c := s.dial(t)
			c.Handshake(req) // CheckUpgrade refuses any Sec-WebSocket-Extensions
			s.checkAlive(t, c)
		}},
		{name: "request_split_into_many_writes_101", run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			i := 0
			c.WriteSplit(req.Bytes(), func() int { i++; return 1 + i%5 })
			c.ExpectUpgrade(req)
			s.checkAlive(t, c)
		}},
		{name: "header_block_at_limit_101", needs: needHeaderLimit, run: func(t *testing.T, s *suite) {
			req := s.request().PadTo(s.MaxHeaderBytes)
			c := s.dial(t)
			c.Handshake(req)
			s.checkAlive(t, c)
		}},
		{name: "header_block_over_limit_431", needs: needHeaderLimit, run: func(t *testing.T, s *suite) {
			s.refused(t, s.request().PadTo(s.MaxHeaderBytes+1), 431)
		}},
		{name: "header_block_unterminated_over_limit_431", needs: needHeaderLimit, run: func(t *testing.T, s *suite) {
			// A header block that never ends: the server must answer once
			// the limit has passed, not wait for the blank line.
			c := s.dial(t)
			head := s.request().Bytes()
			head = append(head[:len(head)-2], "X-Pad: "...) // the blank line never comes
			pad := strings.Repeat("x", max(s.MaxHeaderBytes+1-len(head), 1))
			_ = c.TryWrite(append(head, pad...))
			c.ExpectRefusal(431, s.closeBound)
		}},
		{name: "subprotocol_not_configured_none_selected", needs: needNoSubprotocols, run: func(t *testing.T, s *suite) {
			req := s.request().Set("Sec-WebSocket-Protocol", "chat, superchat")
			c := s.dial(t)
			if s.RefusesUnknownSubprotocols {
				c.Write(req.Bytes())
				c.ExpectRefusal(400, s.closeBound)
				return
			}
			resp := c.Handshake(req)
			if p := resp.Values("Sec-WebSocket-Protocol"); len(p) > 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q selected by an endpoint without subprotocols", p)
			}
			s.checkAlive(t, c)
		}},
		{name: "subprotocol_selected_from_offer", needs: needSubprotocols, run: func(t *testing.T, s *suite) {
			offer := []string{"x-unknown-proto"}
			for i := len(s.Subprotocols) - 1; i >= 0; i-- {
				offer = append(offer, s.Subprotocols[i])
			}
			req := s.request().Set("Sec-WebSocket-Protocol", strings.Join(offer, ", "))
			c := s.dial(t)
			resp := c.Handshake(req) // checks it was offered
			if got := resp.Protocol(); !contains(s.Subprotocols, got) {
				t.Fatalf("selected subprotocol %q, want one of %q", got, s.Subprotocols)
			}
			s.checkAlive(t, c)
		}},
		{name: "subprotocol_each_alone", needs: needSubprotocols, run: func(t *testing.T, s *suite) {
			for _, p := range s.Subprotocols {
				req := s.request().Set("Sec-WebSocket-Protocol", "x-unknown-proto, "+p)
				c := s.dial(t)
				if got := c.Handshake(req).Protocol(); got != p {
					t.Fatalf("offered %q: selected %q, want %q", req.Get("Sec-WebSocket-Protocol"), got, p)
				}
				s.checkAlive(t, c)
			}
		}},
		{name: "subprotocol_none_matching_none_selected", needs: needSubprotocols, run: func(t *testing.T, s *suite) {
			req := s.request().Set("Sec-WebSocket-Protocol", "x-unknown-1, x-unknown-2")
			c := s.dial(t)
			if s.RefusesUnknownSubprotocols {
				c.Write(req.Bytes())
				c.ExpectRefusal(400, s.closeBound)
				return
			}
			if p := c.Handshake(req).Values("Sec-WebSocket-Protocol"); len(p) > 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q selected, none of it was offered", p)
			}
			s.checkAlive(t, c)
		}},
		{name: "subprotocol_not_offered_none_selected", needs: needSubprotocols, run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			if p := c.Handshake(s.request()).Values("Sec-WebSocket-Protocol"); len(p) > 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q selected, none was offered", p)
			}
			s.checkAlive(t, c)
		}},
	}
	return cases
}

// checkAlive proves an upgraded connection works (an echo, or a ping if
// the endpoint does not echo), then closes it cleanly.
func (s *suite) checkAlive(t *testing.T, c *Client) {
	t.Helper()
	if s.NoEcho {
		c.Send(OpPing, true, []byte("alive?"))
		c.ExpectFrame(OpPong, []byte("alive?"))
	} else {
		c.Send(OpText, true, []byte("alive?"))
		c.ExpectMessage(OpText, []byte("alive?"))
	}
	c.CloseHandshake(s.closeBound)
}

// --- frames -----------------------------------------------------------------

// failCase: send the bytes of frames after the handshake (the server may
// close before reading all of them), expect close code and TCP closed.
func failCase(name string, code uint16, n needs, frames func(s *suite) []byte) testCase {
	return testCase{name: name, needs: n, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		_ = c.TryWrite(frames(s))
		s.expectFail(c, code)
	}}
}

// expectFail expects the connection failed with code (see
// Target.RepliesBeforeFailure for the replies a relay may send first).
func (s *suite) expectFail(c *Client, code uint16) {
	c.T.Helper()
	if s.RepliesBeforeFailure {
		c.SkipData()
	}
	c.ExpectFail(code, s.closeBound)
}

// headerFailCase is a failCase whose last frame is a header declaring more
// than the limits allow, its payload never sent: the server must answer
// from the header alone, at once (within the close bound), not wait for
// the payload.
func headerFailCase(name string, code uint16, n needs, frames func(s *suite) []byte) testCase {
	return testCase{name: name, needs: n, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		_ = c.TryWrite(frames(s))
		c.Timeout = s.closeBound
		s.expectFail(c, code)
	}}
}

func (s *suite) frameCases() []testCase {
	hello := []byte("hello")
	var cases []testCase
	add := func(tc ...testCase) { cases = append(cases, tc...) }

	// 1002: frames that break the framing rules (RFC 6455 section 5).
	add(failCase("unmasked_text_1002", CloseProtocolError, 0, func(*suite) []byte {
		return AppendFrame(nil, OpText, true, 0, false, hello)
	}))
	add(failCase("unmasked_ping_1002", CloseProtocolError, 0, func(*suite) []byte {
		return AppendFrame(nil, OpPing, true, 0, false, hello)
	}))
	for _, rsv := range []struct {
		name string
		bits byte
	}{{"rsv1", Rsv1}, {"rsv2", Rsv2}, {"rsv3", Rsv3}, {"rsv1_rsv2_rsv3", Rsv1 | Rsv2 | Rsv3}} {
		add(failCase(rsv.name+"_text_1002", CloseProtocolError, 0, func(*suite) []byte {
			return AppendFrame(nil, OpText, true, rsv.bits, true, hello)
		}))
	}
	add(failCase("rsv1_ping_1002", CloseProtocolError, 0, func(*suite) []byte {
		return AppendFrame(nil, OpPing, true, Rsv1, true, hello)
	}))
	for _, op := range []Opcode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		add(failCase(fmt.Sprintf("reserved_opcode_0x%X_1002", byte(op)), CloseProtocolError, 0, func(*suite) []byte {
			return Masked(op, true, hello)
		}))
		add(failCase(fmt.Sprintf("reserved_opcode_0x%X_empty_1002", byte(op)), CloseProtocolError, 0, func(*suite) []byte {
			return Masked(op, true, nil)
		}))
	}
	for _, op := range []Opcode{OpPing, OpPong, OpClose} {
		add(failCase(fmt.Sprintf("%v_126_bytes_1002", op), CloseProtocolError, 0, func(*suite) []byte {
			p := BinaryPayload(126)
			if op == OpClose {
				copy(p, ClosePayload(CloseNormal, strings.Repeat("r", 124)))
			}
			return Masked(op, true, p)
		}))
	}
	add(failCase("fragmented_ping_1002", CloseProtocolError, 0, func(*suite) []byte {
		return Masked(OpPing, false, hello)
	}))
	add(failCase("fragmented_close_1002", CloseProtocolError, 0, func(*suite) []byte {
		return Masked(OpClose, false, ClosePayload(CloseNormal, ""))
	}))
	add(failCase("continuation_without_start_1002", CloseProtocolError, 0, func(*suite) []byte {
		return Masked(OpContinuation, true, hello)
	}))
	add(failCase("continuation_not_final_without_start_1002", CloseProtocolError, 0, func(*suite) []byte {
		return Masked(OpContinuation, false, hello)
	}))
	for _, pair := range []struct{ first, second Opcode }{{OpText, OpText}, {OpText, OpBinary}, {OpBinary, OpText}, {OpBinary, OpBinary}} {
		add(failCase(fmt.Sprintf("%v_inside_fragmented_%v_1002", pair.second, pair.first), CloseProtocolError, 0, func(*suite) []byte {
			return Concat(Masked(pair.first, false, []byte("part1")), Masked(pair.second, true, []byte("part2")))
		}))
	}
	add(testCase{name: "continuation_after_finished_message_1002", needs: needEcho, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		_ = c.TryWrite(Concat(Masked(OpText, true, hello), Masked(OpContinuation, true, []byte("more"))))
		c.ExpectMessage(OpText, hello)
		c.ExpectFail(CloseProtocolError, s.closeBound)
	}})
	add(headerFailCase("length_64bit_top_bit_set_1002", CloseProtocolError, 0, func(*suite) []byte {
		return AppendHeader(nil, OpBinary, true, 0, true, RandomMask(), 1<<63|5)
	}))

	// 1007: text that is not UTF-8 (RFC 6455 section 8.1).
	for _, bad := range []struct {
		name string
		p    string
	}{
		{"byte_ff", "hello\xffworld"},
		{"lone_continuation_byte", "\x80"},
		{"overlong_slash", "\xc0\xaf"},
		{"overlong_3_byte", "\xe0\x80\xaf"},
		{"surrogate_d800", "a\xed\xa0\x80b"},
		{"above_10ffff", "\xf4\x90\x80\x80"},
		{"bad_continuation", "\xce\x28"},
	} {
		add(failCase("invalid_utf8_"+bad.name+"_1007", CloseInvalidPayload, 0, func(*suite) []byte {
			return Masked(OpText, true, []byte(bad.p))
		}))
	}
	add(failCase("invalid_utf8_across_fragments_1007", CloseInvalidPayload, 0, func(*suite) []byte {
		// "\xce" then "\x28": the code point started in the first fragment
		// is broken by the first byte of the second.
		return Concat(Masked(OpText, false, []byte("hello\xce")), Masked(OpContinuation, true, []byte("\x28world")))
	}))
	add(failCase("invalid_utf8_in_later_fragment_1007", CloseInvalidPayload, 0, func(*suite) []byte {
		return Concat(Masked(OpText, false, []byte("κόσμε")), Masked(OpContinuation, false, []byte("ok")),
			Masked(OpContinuation, true, []byte("\xff")))
	}))
	add(failCase("text_ends_mid_code_point_1007", CloseInvalidPayload, 0, func(*suite) []byte {
		return Masked(OpText, true, []byte("hello\xe2\x82"))
	}))
	add(failCase("fragmented_text_ends_mid_code_point_1007", CloseInvalidPayload, 0, func(*suite) []byte {
		return Concat(Masked(OpText, false, []byte("hello\xe2")), Masked(OpContinuation, false, []byte("\x82")),
			Masked(OpContinuation, true, nil))
	}))
	add(failCase("close_reason_invalid_utf8_1007", CloseInvalidPayload, 0, func(*suite) []byte {
		return Masked(OpClose, true, ClosePayload(CloseNormal, "bye\xff\xfe"))
	}))

	// Close payloads (RFC 6455 sections 5.5.1 and 7.4).
	add(failCase("close_1_byte_payload_1002", CloseProtocolError, 0, func(*suite) []byte {
		return Masked(OpClose, true, []byte{0x03})
	}))
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add(failCase(fmt.Sprintf("close_code_%d_1002", code), CloseProtocolError, 0, func(*suite) []byte {
			return Masked(OpClose, true, ClosePayload(code, ""))
		}))
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999} {
		add(testCase{name: fmt.Sprintf("close_code_%d_echoed", code), run: func(t *testing.T, s *suite) {
			c := s.open(t)
			c.Send(OpClose, true, ClosePayload(code, "bye"))
			c.ExpectClose(code)
			c.ExpectTCPClosed(s.closeBound)
		}})
	}
	add(testCase{name: "close_empty_answered", run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Send(OpClose, true, nil)
		c.ExpectClose(0, CloseNormal) // empty, or 1000
		c.ExpectTCPClosed(s.closeBound)
	}})
	add(testCase{name: "close_reason_123_bytes_echoed", run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Send(OpClose, true, ClosePayload(CloseNormal, string(TextPayload(123))))
		c.ExpectClose(CloseNormal)
		c.ExpectTCPClosed(s.closeBound)
	}})
	add(testCase{name: "nothing_sent_after_close", run: func(t *testing.T, s *suite) {
		// Data and a ping right behind the close, in the same write: the
		// server must not echo or answer them (RFC 6455 section 5.5.1).
		c := s.open(t)
		c.Write(Concat(Masked(OpClose, true, ClosePayload(CloseNormal, "")),
			Masked(OpText, true, hello), Masked(OpPing, true, []byte("ping"))))
		c.ExpectClose(CloseNormal)
		c.ExpectTCPClosed(s.closeBound)
	}})
	add(testCase{name: "close_inside_fragmented_message_answered", run: func(t *testing.T, s *suite) {
		// A control frame may come between fragments; a close ends the
		// connection without the unfinished message being delivered.
		c := s.open(t)
		c.Write(Concat(Masked(OpText, false, []byte("part1")), Masked(OpClose, true, ClosePayload(CloseNormal, ""))))
		c.ExpectClose(CloseNormal)
		c.ExpectTCPClosed(s.closeBound)
	}})

	// 1009: sizes over the limits, refused from the header.
	add(headerFailCase("length_1TiB_binary_no_payload_1009", CloseMessageTooBig, needMessageLimit, func(*suite) []byte {
		return AppendHeader(nil, OpBinary, true, 0, true, RandomMask(), 1<<40)
	}))
	add(headerFailCase("length_1TiB_text_no_payload_1009", CloseMessageTooBig, needMessageLimit, func(*suite) []byte {
		return AppendHeader(nil, OpText, false, 0, true, RandomMask(), 1<<40)
	}))
	add(headerFailCase("length_frame_limit_plus_1_no_payload_1009", CloseMessageTooBig, needMessageLimit, func(s *suite) []byte {
		return AppendHeader(nil, OpBinary, true, 0, true, RandomMask(), uint64(s.maxFrame)+1)
	}))
	add(headerFailCase("length_message_limit_plus_1_no_payload_1009", CloseMessageTooBig, needMessageLimit, func(s *suite) []byte {
		return AppendHeader(nil, OpBinary, true, 0, true, RandomMask(), uint64(s.MaxMessageBytes)+1)
	}))
	add(headerFailCase("continuation_length_1TiB_no_payload_1009", CloseMessageTooBig, needMessageLimit, func(*suite) []byte {
		return Concat(Masked(OpBinary, false, hello), AppendHeader(nil, OpContinuation, true, 0, true, RandomMask(), 1<<40))
	}))
	add(failCase("frame_over_frame_limit_1009", CloseMessageTooBig, needMessageLimit|needFrameBelowMessage, func(s *suite) []byte {
		return Masked(OpBinary, true, BinaryPayload(int(s.maxFrame)+1))
	}))
	for _, op := range []Opcode{OpBinary, OpText} {
		add(failCase(fmt.Sprintf("fragmented_%v_over_message_limit_1009", op), CloseMessageTooBig, needMessageLimit, func(s *suite) []byte {
			return fragments(op, Payload(op, int(s.MaxMessageBytes)+1), s.fragmentSize(int(s.MaxMessageBytes)+1))
		}))
	}

	// Control frames.
	for _, n := range []int{0, 10, 125} {
		add(testCase{name: fmt.Sprintf("ping_%dB_answered_with_pong", n), run: func(t *testing.T, s *suite) {
			c := s.open(t)
			p := BinaryPayload(n)
			c.Send(OpPing, true, p)
			c.ExpectFrame(OpPong, p)
			c.CloseHandshake(s.closeBound)
		}})
	}
	add(testCase{name: "ping_inside_fragmented_message", needs: needEcho, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Write(Concat(Masked(OpText, false, []byte("frag1-")), Masked(OpPing, true, []byte("in between")),
			Masked(OpContinuation, true, []byte("frag2"))))
		c.ExpectFrame(OpPong, []byte("in between"))
		c.ExpectMessage(OpText, []byte("frag1-frag2"))
		c.CloseHandshake(s.closeBound)
	}})
	add(testCase{name: "unsolicited_pong_ignored", needs: needEcho, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Send(OpPong, true, []byte("unsolicited"))
		c.Send(OpPong, true, nil)
		c.Send(OpText, true, []byte("after the pongs"))
		c.ExpectMessage(OpText, []byte("after the pongs"))
		c.CloseHandshake(s.closeBound)
	}})

	// Echoes of every length encoding, single frames and fragmented.
	for _, op := range []Opcode{OpText, OpBinary} {
		for _, n := range s.echoSizes() {
			add(testCase{name: fmt.Sprintf("echo_%v_%dB", op, n), needs: needEcho, run: func(t *testing.T, s *suite) {
				c := s.open(t)
				p := Payload(op, n)
				c.Write(Masked(op, true, p))
				c.ExpectMessage(op, p)
				c.CloseHandshake(s.closeBound)
			}})
		}
		add(testCase{name: fmt.Sprintf("echo_%v_fragmented_max_message", op), needs: needEcho | needMessageLimit, run: func(t *testing.T, s *suite) {
			c := s.open(t)
			p := Payload(op, int(s.MaxMessageBytes))
			c.Write(fragments(op, p, s.fragmentSize(len(p))))
			c.ExpectMessage(op, p)
			c.CloseHandshake(s.closeBound)
		}})
		add(testCase{name: fmt.Sprintf("echo_%v_fragmented_with_empty_fragments", op), needs: needEcho, run: func(t *testing.T, s *suite) {
			c := s.open(t)
			c.Write(Concat(Masked(op, false, nil), Masked(OpContinuation, false, []byte("abc")),
				Masked(OpContinuation, false, nil), Masked(OpContinuation, true, nil)))
			c.ExpectMessage(op, []byte("abc"))
			c.CloseHandshake(s.closeBound)
		}})
	}
	add(testCase{name: "utf8_split_mid_code_point_echoed_whole", needs: needEcho, run: func(t *testing.T, s *suite) {
		// "Hello-κόσμε-𝄞" cut inside a 2-, a 3- and a 4-byte code point.
		c := s.open(t)
		c.Write(Concat(Masked(OpText, false, []byte("Hello-\xce")), Masked(OpContinuation, false, []byte("\xba\xe1\xbd")),
			Masked(OpContinuation, false, []byte("\xb9\xcf\x83\xce\xbc\xce\xb5-\xf0\x9d")),
			Masked(OpContinuation, true, []byte("\x84\x9e"))))
		c.ExpectMessage(OpText, []byte("Hello-\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5-\xf0\x9d\x84\x9e"))
		c.CloseHandshake(s.closeBound)
	}})
	add(testCase{name: "utf8_split_mid_code_point_separate_writes", needs: needEcho, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Send(OpText, false, []byte("\xf0\x9f"))
		c.Send(OpContinuation, false, []byte("\x98"))
		c.Send(OpContinuation, true, []byte("\x80!"))
		c.ExpectMessage(OpText, []byte("😀!"))
		c.CloseHandshake(s.closeBound)
	}})
	add(testCase{name: "messages_in_one_write_echoed_in_order", needs: needEcho, run: func(t *testing.T, s *suite) {
		c := s.open(t)
		c.Write(Concat(Masked(OpText, true, []byte("one")), Masked(OpBinary, true, []byte{2}),
			Masked(OpPing, true, []byte("three")), Masked(OpText, true, TextPayload(300))))
		// Messages keep their order; the pong may come anywhere among them
		// ("as soon as practical", RFC 6455 section 5.5.3).
		var got []string
		pongs := 0
		var msg []byte
		var msgOp Opcode
		for len(got) < 3 || pongs < 1 {
			f := c.NextFrame()
			switch {
			case f.Opcode == OpPong:
				if string(f.Payload) != "three" || pongs > 0 {
					t.Fatalf("unexpected %v", f)
				}
				pongs++
				continue
			case f.Opcode == OpText || f.Opcode == OpBinary:
				if msg != nil {
					t.Fatalf("got %v inside a fragmented message", f)
				}
				msgOp, msg = f.Opcode, []byte{}
			case f.Opcode != OpContinuation || msg == nil:
				t.Fatalf("unexpected %v", f)
			}
			msg = append(msg, f.Payload...)
			if f.Fin {
				got = append(got, fmt.Sprintf("%v:%q", msgOp, msg))
				msg = nil
			}
		}
		want := []string{fmt.Sprintf("text:%q", "one"), fmt.Sprintf("binary:%q", []byte{2}), fmt.Sprintf("text:%q", TextPayload(300))}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("messages %q, want %q", got, want)
		}
		c.CloseHandshake(s.closeBound)
	}})
	return cases
}

// echoSizes are the single-frame echo sizes the target allows: the length
// encoding boundaries and the message limit itself.
func (s *suite) echoSizes() []int {
	var out []int
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536} {
		if s.maxFrame <= 0 || int64(n) <= s.maxFrame {
			out = append(out, n)
		}
	}
	if s.MaxMessageBytes > 65536 && s.MaxMessageBytes <= s.maxFrame {
		out = append(out, int(s.MaxMessageBytes))
	}
	return out
}

// fragmentSize is the fragment size for a total-byte message: at most the
// frame limit, and at least three fragments for small totals.
func (s *suite) fragmentSize(total int) int {
	n := (total + 2) / 3
	if s.maxFrame > 0 && int64(n) > s.maxFrame {
		n = int(s.maxFrame)
	}
	return max(n, 1)
}

// fragments encodes p as an op message in masked frames of at most size
// bytes each.
func fragments(op Opcode, p []byte, size int) []byte {
	var out []byte
	first := true
	for first || len(p) > 0 {
		n := min(size, len(p))
		fop := OpContinuation
		if first {
			fop = op
		}
		out = AppendFrame(out, fop, n == len(p), 0, true, p[:n])
		p = p[n:]
		first = false
	}
	return out
}

// --- pipelined --------------------------------------------------------------

func (s *suite) pipelinedCases() []testCase {
	return []testCase{
		{name: "request_and_two_frames_in_one_write", needs: needEcho, run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			c.Write(Concat(req.Bytes(), Masked(OpText, true, []byte("first")), Masked(OpBinary, true, []byte("second"))))
			c.ExpectUpgrade(req)
			c.ExpectMessage(OpText, []byte("first"))
			c.ExpectMessage(OpBinary, []byte("second"))
			c.CloseHandshake(s.closeBound)
		}},
		{name: "request_frames_and_close_in_one_write", needs: needEcho, run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			big := BinaryPayload(70000)
			if s.maxFrame > 0 && int64(len(big)) > s.maxFrame {
				big = big[:s.maxFrame]
			}
			c.Write(Concat(req.Bytes(), Masked(OpText, true, []byte("first")), Masked(OpBinary, true, big),
				Masked(OpClose, true, ClosePayload(CloseNormal, "done"))))
			c.ExpectUpgrade(req)
			c.ExpectMessage(OpText, []byte("first"))
			c.ExpectMessage(OpBinary, big)
			c.ExpectClose(CloseNormal)
			c.ExpectTCPClosed(s.closeBound)
		}},
		{name: "request_and_ping_in_one_write", run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			c.Write(Concat(req.Bytes(), Masked(OpPing, true, []byte("early"))))
			c.ExpectUpgrade(req)
			c.ExpectFrame(OpPong, []byte("early"))
			c.CloseHandshake(s.closeBound)
		}},
		{name: "request_and_unmasked_frame_in_one_write_1002", run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			c.Write(Concat(req.Bytes(), AppendFrame(nil, OpText, true, 0, false, []byte("unmasked"))))
			c.ExpectUpgrade(req)
			c.ExpectFail(CloseProtocolError, s.closeBound)
		}},
		{name: "request_and_partial_frame_then_rest", needs: needEcho, run: func(t *testing.T, s *suite) {
			c := s.dial(t)
			req := s.request()
			frame := Masked(OpText, true, TextPayload(200))
			c.Write(Concat(req.Bytes(), frame[:3]))
			c.ExpectUpgrade(req)
			c.Write(frame[3:])
			c.ExpectMessage(OpText, TextPayload(200))
			c.CloseHandshake(s.closeBound)
		}},
	}
}

// methodRefused is the case of an upgrade request with method: 405 with
// "Allow: GET".
func methodRefused(method string) func(*testing.T, *suite) {
	return func(t *testing.T, s *suite) {
		req := s.request()
		req.Method = method
		resp := s.refused(t, req, 405)
		if !resp.HasToken("Allow", "GET") {
			t.Errorf("405 without \"Allow: GET\" (RFC 9110 section 15.5.6 requires Allow): %v", resp)
		}
	}
}
