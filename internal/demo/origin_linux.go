package demo

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The origin's answer; the client counts a request as served only when
// this body comes back.
const (
	originPort   = 8080
	originBody   = "hello from the origin\n"
	originHeader = "X-Demo-Origin"
)

// originServer is the HTTP origin behind the edge: a net/http server in
// the origin's namespace.
type originServer struct {
	srv  *http.Server
	done chan struct{}
	// requests is every request it answered; forwarded those that came
	// through the edge's pipeline on behalf of the client (Via names
	// rampart, X-Forwarded-For ends with the client's address).
	requests, forwarded atomic.Int64
}

// serveOrigin listens on the origin's address, port originPort, inside its
// namespace (the socket keeps the namespace it was made in) and serves
// from an ordinary goroutine.
func (d *run) serveOrigin() (*originServer, error) {
	var ln net.Listener
	addr := fmt.Sprintf("%s:%d", d.origin.Addr, originPort)
	if err := d.origin.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", d.origin.NS, err)
	}
	o := &originServer{done: make(chan struct{})}
	client := d.client.Addr.String()
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.requests.Add(1)
			xff := r.Header.Get("X-Forwarded-For")
			if strings.Contains(r.Header.Get("Via"), "rampart") &&
				(xff == client || strings.HasSuffix(xff, ", "+client)) {
				o.forwarded.Add(1)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set(originHeader, d.origin.NS)
			io.WriteString(w, originBody)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.With("component", "demo").Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(o.done)
		_ = o.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return o, nil
}

// stop closes the listener and every connection, and waits for Serve.
func (o *originServer) stop() {
	o.srv.Close()
	<-o.done
}
