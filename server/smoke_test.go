package server

import (
	"testing"

	"github.com/gorilla/websocket"
)

func TestSmokeEcho(t *testing.T) {
	srv, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		mt, p, err := c.ReadMessage()
		if err != nil || mt != websocket.TextMessage || string(p) != "hello" {
			t.Fatal(mt, string(p), err)
		}
	}
}
