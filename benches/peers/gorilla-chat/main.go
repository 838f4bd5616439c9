// gorilla-chat ADDR: the gorilla/websocket chat hub as a fan-out peer of Tether's
// benchmark (issue 22). Written for this benchmark in the shape of gorilla/websocket's
// examples/chat (a hub goroutine that owns the registry; per client a read pump, a write
// pump and a bounded send channel; a full channel closes the client; the write pump merges
// every queued message into one text message, separated by '\n'), with the same
// constants. It serves ws://ADDR/ws and sends every message any client sends to every
// connected client, the sender included.
//
// Like the Rust peers it prints "gorilla-chat: stats conns=… relayed=… queued=… dropped=…
// cut=…" on standard error once a second while the counters change.
//
// Built offline with Debian's golang-go and golang-github-gorilla-websocket-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o target/peers/gorilla-chat ./benches/peers/gorilla-chat
package main

import (
	"bytes"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 512
	sendQueue      = 256
)

var (
	newline  = []byte{'\n'}
	space    = []byte{' '}
	upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
)

// The counters every fan-out peer reports.
var conns, relayed, queued, dropped, cut int64

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case message := <-h.broadcast:
			atomic.AddInt64(&relayed, 1)
			for c := range h.clients {
				select {
				case c.send <- message:
					atomic.AddInt64(&queued, 1)
				default:
					// A client that cannot keep up is closed.
					atomic.AddInt64(&dropped, 1)
					atomic.AddInt64(&cut, 1)
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

// readPump sends every message the client sends to the hub.
func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
		atomic.AddInt64(&conns, -1)
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		c.conn.SetReadDeadline(time.Now().Add(pongWait))
		return nil
	})
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- bytes.TrimSpace(bytes.Replace(message, newline, space, -1))
	}
}

// writePump writes what the hub queued, every queued message in one text message.
func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(message)
			for i, n := 0, len(c.send); i < n; i++ {
				w.Write(newline)
				w.Write(<-c.send)
			}
			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func serveWs(h *hub, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	atomic.AddInt64(&conns, 1)
	c := &client{hub: h, conn: conn, send: make(chan []byte, sendQueue)}
	h.register <- c
	go c.writePump()
	go c.readPump()
}

func report() {
	last := ""
	for range time.Tick(time.Second) {
		line := fmt.Sprintf("conns=%d relayed=%d queued=%d dropped=%d cut=%d",
			atomic.LoadInt64(&conns), atomic.LoadInt64(&relayed), atomic.LoadInt64(&queued),
			atomic.LoadInt64(&dropped), atomic.LoadInt64(&cut))
		if line != last {
			fmt.Fprintf(os.Stderr, "gorilla-chat: stats %s\n", line)
			last = line
		}
	}
}

func main() {
	addr := "127.0.0.1:9001"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	h := &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan []byte),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
	go h.run()
	go report()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWs(h, w, r) })
	fmt.Fprintf(os.Stderr, "gorilla-chat listening on %s\n", addr)
	server := &http.Server{Addr: addr, ReadHeaderTimeout: 3 * time.Second}
	log.Fatal(server.ListenAndServe())
}
