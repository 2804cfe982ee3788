package codec

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestNewClientKey(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		key := NewClientKey()
		if len(key) != 24 || !validKey(key) {
			t.Fatalf(
				"NewClientKey() = %q, not 16 bytes of base64",
				key,
			)
		}
		if seen[key] {
			t.Fatalf(
				"NewClientKey() repeated %q",
				key,
			)
		}
		seen[key] = true
	}
}

// TestClientServerRoundTrip runs both sides of the handshake on bytes: the
// client request through the server parser, the server answer through the
// client check.
func TestClientServerRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		req       ClientRequest
		supported []string // server side
		want      string   // negotiated subprotocol
	}{
		{
			name: "minimal",
			req: ClientRequest{
				Host: "backend:8080",
			},
		},
		{
			name: "path, query and extra headers",
			req: ClientRequest{
				Host: "backend.internal:9000",
				URI:  "/ws/v1?token=abc",
				Header: []HeaderField{
					{Name: "Origin", Value: "https://app.example.com"},
					{Name: "X-Forwarded-For", Value: "192.0.2.1"},
				},
			},
		},
		{
			name: "one subprotocol",
			req: ClientRequest{
				Host:      "backend:8080",
				Protocols: []string{"chat"},
			},
			supported: []string{"chat"},
			want:      "chat",
		},
		{
			name: "server preference among several",
			req: ClientRequest{
				Host:      "backend:8080",
				Protocols: []string{"chat", "superchat", "v2.wsgate"},
			},
			supported: []string{"v2.wsgate", "superchat"},
			want:      "v2.wsgate",
		},
		{
			name: "offered but none supported",
			req: ClientRequest{
				Host:      "backend:8080",
				Protocols: []string{"chat"},
			},
			supported: []string{"mqtt"},
			want:      "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			r.Key = NewClientKey()
			out := AppendClientRequest([]byte("x"), &r)
			if out[0] != 'x' {
				t.Fatal(
					"AppendClientRequest lost dst",
				)
			}
			out = out[1:]

			// The request is plain HTTP/1.1 for net/http too.
			hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
			if err != nil {
				t.Fatalf(
					"net/http cannot read %q: %v",
					out, err,
				)
			}
			if hr.Method != "GET" || hr.Host != r.Host || hr.Header.Get("Sec-WebSocket-Key") != r.Key {
				t.Fatalf(
					"net/http read %s %s %v",
					hr.Method, hr.Host, hr.Header,
				)
			}

			var s HeaderScanner
			n, err := s.Scan(out, 0)
			if err != nil || n != len(out) {
				t.Fatalf(
					"Scan = %d, %v; want %d",
					n, err, len(out),
				)
			}
			up, err := ParseUpgrade(out[:n])
			if err != nil {
				t.Fatalf(
					"ParseUpgrade(%q): %v",
					out, err,
				)
			}
			wantURI := r.URI
			if wantURI == "" {
				wantURI = "/"
			}
			if up.URI != wantURI || up.Host != r.Host || up.Key != r.Key {
				t.Fatalf(
					"server saw URI %q Host %q Key %q",
					up.URI, up.Host, up.Key,
				)
			}
			if !reflect.DeepEqual(up.Protocols, r.Protocols) {
				t.Fatalf(
					"server saw protocols %q, want %q",
					up.Protocols, r.Protocols,
				)
			}
			for _, f := range r.Header {
				if got := up.Get(f.Name); got != f.Value {
					t.Fatalf(
						"server saw %s: %q, want %q",
						f.Name, got, f.Value,
					)
				}
			}

			chosen := SelectProtocol(tt.supported, up.Protocols)
			if chosen != tt.want {
				t.Fatalf(
					"SelectProtocol = %q, want %q",
					chosen, tt.want,
				)
			}
			resp := AppendAccept(nil, up.Key, chosen)
			protocol, status, err := ParseClientResponse(resp, &r)
			if err != nil || status != 101 || protocol != tt.want {
				t.Fatalf(
					"ParseClientResponse(%q) = %q, %d, %v; want %q, 101",
					resp, protocol, status, err, tt.want,
				)
			}
		})
	}
}

func TestParseClientResponse(t *testing.T) {
	key := rfcKey
	accept := "Sec-WebSocket-Accept: " + rfcAccept
	response := func(statusLine string, headers ...string) string {
		return request(statusLine, headers...)
	}
	ok := []string{"Upgrade: websocket", "Connection: Upgrade", accept}
	withLine := func(extra ...string) []string { return append(append([]string(nil), ok...), extra...) }
	tests := []struct {
		name      string
		block     string
		protocols []string // offered by the client
		protocol  string   // wanted result
		status    int
		fail      bool
	}{
		{
			name:   "RFC 6455 response",
			block:  rfcResponse,
			status: 101,
		},
		{
			name:   "AppendAccept output",
			block:  string(AppendAccept(nil, key, "")),
			status: 101,
		},
		{
			name:   "status line without reason phrase",
			block:  response("HTTP/1.1 101", ok...),
			status: 101,
		},
		{
			name:   "tokens in any case and lists",
			block:  response("HTTP/1.1 101 Switching Protocols", "upgrade: WebSocket", "connection: keep-alive, UPGRADE", strings.ToLower(accept[:20])+accept[20:]),
			status: 101,
		},
		{
			name:      "offered subprotocol chosen",
			block:     string(AppendAccept(nil, key, "superchat")),
			protocols: []string{"chat", "superchat"},
			protocol:  "superchat",
			status:    101,
		},
		{
			name:      "offered but none chosen",
			block:     string(AppendAccept(nil, key, "")),
			protocols: []string{"chat"},
			status:    101,
		},
		{
			name:   "wrong accept",
			block:  string(AppendAccept(nil, "AQIDBAUGBwgJCgsMDQ4PEA==", "")),
			status: 101,
			fail:   true,
		},
		{
			name:   "accept of the key itself",
			block:  response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+key),
			status: 101,
			fail:   true,
		},
		{
			name:   "missing accept",
			block:  response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
			status: 101,
			fail:   true,
		},
		{
			name:   "missing Upgrade",
			block:  response("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", accept),
			status: 101,
			fail:   true,
		},
		{
			name:   "missing Connection",
			block:  response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", accept),
			status: 101,
			fail:   true,
		},
		{
			name:   "extension present",
			block:  response("HTTP/1.1 101 Switching Protocols", withLine("Sec-WebSocket-Extensions: permessage-deflate")...),
			status: 101,
			fail:   true,
		},
		{
			name:   "extension in lower case",
			block:  response("HTTP/1.1 101 Switching Protocols", withLine("sec-websocket-extensions: x-webkit-deflate-frame")...),
			status: 101,
			fail:   true,
		},
		{
			name:   "subprotocol nothing was offered for",
			block:  string(AppendAccept(nil, key, "chat")),
			status: 101,
			fail:   true,
		},
		{
			name:      "subprotocol not among those offered",
			block:     string(AppendAccept(nil, key, "mqtt")),
			protocols: []string{"chat", "superchat"},
			status:    101,
			fail:      true,
		},
		{
			name:      "subprotocol list instead of one",
			block:     string(AppendAccept(nil, key, "chat, superchat")),
			protocols: []string{"chat", "superchat"},
			status:    101,
			fail:      true,
		},
		{
			name:   "malformed header line",
			block:  response("HTTP/1.1 101 Switching Protocols", withLine("X-Bad : x")...),
			status: 101,
			fail:   true,
		},
		{
			name:   "unterminated block",
			block:  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket",
			status: 101,
			fail:   true,
		},
		{
			name:   "200 OK",
			block:  response("HTTP/1.1 200 OK", "Content-Length: 0"),
			status: 200,
			fail:   true,
		},
		{
			name:   "403 with accept headers",
			block:  response("HTTP/1.1 403 Forbidden", ok...),
			status: 403,
			fail:   true,
		},
		{
			name:   "426 from AppendHTTPError",
			block:  string(AppendHTTPError(nil, &HandshakeError{Status: 426, Reason: "no", Header: "Sec-WebSocket-Version: 13\r\n"})),
			status: 426,
			fail:   true,
		},
		{
			name:   "503",
			block:  response("HTTP/1.1 503 Service Unavailable"),
			status: 503,
			fail:   true,
		},
		{
			name:  "HTTP/1.0",
			block: response("HTTP/1.0 101 Switching Protocols", ok...),
			fail:  true,
		},
		{
			name:  "status not numeric",
			block: response("HTTP/1.1 1O1 Switching Protocols", ok...),
			fail:  true,
		},
		{
			name:  "status of 4 digits",
			block: response("HTTP/1.1 1010 Switching Protocols", ok...),
			fail:  true,
		},
		{
			name:  "short status line",
			block: response("HTTP/1.1 10", ok...),
			fail:  true,
		},
		{
			name:  "no status line",
			block: "HTTP/1.1 101",
			fail:  true,
		},
		{
			name:  "empty",
			block: "",
			fail:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ClientRequest{Host: "backend:8080", Key: key, Protocols: tt.protocols}
			protocol, status, err := ParseClientResponse([]byte(tt.block), r)
			if status != tt.status {
				t.Errorf(
					"status %d, want %d",
					status, tt.status,
				)
			}
			if tt.fail {
				if !errors.Is(err, ErrBadHandshakeResponse) {
					t.Fatalf(
						"ParseClientResponse = %q, %d, %v; want ErrBadHandshakeResponse",
						protocol, status, err,
					)
				}
				if protocol != "" {
					t.Errorf(
						"protocol %q returned with an error",
						protocol,
					)
				}
				return
			}
			if err != nil || protocol != tt.protocol {
				t.Fatalf(
					"ParseClientResponse = %q, %d, %v; want %q",
					protocol, status, err, tt.protocol,
				)
			}
		})
	}
}
