package server

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPConfig bounds what one client may hold of a listener: slow or idle
// clients are cut off, and no more than MaxConnections are served at
// once (more wait in the kernel's backlog).
type HTTPConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers; ReadTimeout
	// the whole request, body included.
	ReadHeaderTimeout string `toml:"read_header_timeout"`
	ReadTimeout       string `toml:"read_timeout"`
	// WriteTimeout bounds a response from the end of its request's
	// headers; it must outlast the agents' long polls (60 s).
	WriteTimeout string `toml:"write_timeout"`
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout    string `toml:"idle_timeout"`
	MaxConnections int    `toml:"max_connections"`
}

// DefaultHTTP is what a listener runs with when the configuration says
// nothing.
func DefaultHTTP() HTTPConfig {
	return HTTPConfig{ReadHeaderTimeout: "10s", ReadTimeout: "30s", WriteTimeout: "120s", IdleTimeout: "120s", MaxConnections: 4096}
}

// Serve makes the HTTP server of a listener and the listener it accepts
// through (capped at MaxConnections).
func (c Config) Serve(ln net.Listener, h http.Handler) (*http.Server, net.Listener, error) {
	d, hc := DefaultHTTP(), c.HTTP
	srv := &http.Server{Handler: h}
	for _, t := range []struct {
		name, v, def string
		dst          *time.Duration
	}{
		{"read_header_timeout", hc.ReadHeaderTimeout, d.ReadHeaderTimeout, &srv.ReadHeaderTimeout},
		{"read_timeout", hc.ReadTimeout, d.ReadTimeout, &srv.ReadTimeout},
		{"write_timeout", hc.WriteTimeout, d.WriteTimeout, &srv.WriteTimeout},
		{"idle_timeout", hc.IdleTimeout, d.IdleTimeout, &srv.IdleTimeout},
	} {
		v := cmp.Or(t.v, t.def)
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			return nil, nil, fmt.Errorf("http %s %q: want a positive duration", t.name, v)
		}
		*t.dst = dur
	}
	if srv.WriteTimeout <= 60*time.Second {
		return nil, nil, fmt.Errorf("http write_timeout %s: must outlast the agents' 60 s long polls", srv.WriteTimeout)
	}
	max := cmp.Or(hc.MaxConnections, d.MaxConnections)
	if max < 0 {
		return nil, nil, fmt.Errorf("http max_connections %d is negative", max)
	}
	return srv, LimitListener(ln, max), nil
}

// LimitListener accepts at most n connections open at once.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limited struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &slot{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slot is an accepted connection that frees its place when closed.
type slot struct {
	net.Conn
	once    sync.Once
	release func()
}

func (s *slot) Close() error {
	err := s.Conn.Close()
	s.once.Do(s.release)
	return err
}
