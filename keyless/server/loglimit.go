package server

import (
	"sync"
	"time"
)

// logLimiter lets at most n log lines through per interval, for events
// that anyone on the network can cause (failed handshakes).
type logLimiter struct {
	mu       sync.Mutex
	n        int
	interval time.Duration
	start    time.Time
	used     int
}

func newLogLimiter(n int, interval time.Duration) *logLimiter {
	return &logLimiter{n: n, interval: interval}
}

func (l *logLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.start) >= l.interval {
		l.start, l.used = now, 0
	}
	if l.used >= l.n {
		return false
	}
	l.used++
	return true
}
