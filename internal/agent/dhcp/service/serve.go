package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// handler answers one datagram: the reply and its destination, or false.
type handler func(b []byte, from net.Addr) ([]byte, net.Addr, bool)

// longAgo is a deadline in the past: it wakes a blocked read.
var longAgo = time.Unix(1, 0)

// serveUDP reads datagrams from conn and answers them one at a time
// until ctx ends or conn is closed (nil), or conn fails (its error). A
// handler that panics costs its datagram only.
func serveUDP(ctx context.Context, conn net.PacketConn, log *slog.Logger, h handler, c *Counters) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(longAgo) })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		reply, to, ok := guard(log, c, func() ([]byte, net.Addr, bool) { return h(buf[:n], from) })
		if !ok {
			continue
		}
		if _, err := conn.WriteTo(reply, to); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.DebugContext(ctx, "reply not sent", "to", to, "err", err)
		}
	}
}

// guard runs h, turning a panic into a logged drop.
func guard(log *slog.Logger, c *Counters, h func() ([]byte, net.Addr, bool)) (reply []byte, to net.Addr, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.Dropped.Add(1)
			log.Error("request handler panicked", "panic", r)
			reply, to, ok = nil, nil, false
		}
	}()
	return h()
}
