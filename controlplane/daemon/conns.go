package daemon

import (
	"container/list"
	"net"
	"net/http"
	"sync"
)

// connLimiter caps the connections the server holds open. When they near the cap, each new
// connection closes the connection that has been idle longest (a kept-alive connection between
// requests, or one that has sent nothing since it was accepted), so that idle clients, however
// many, cannot keep a new client out; only when every connection is busy does a new one wait in
// the kernel's queue. It is the server's listener, and its ConnState hook.
type connLimiter struct {
	net.Listener
	max  int // connections open at most
	near int // from this many open, each accept closes the longest idle one

	mu    sync.Mutex
	open  int
	idle  list.List     // *trackedConn, longest idle first
	freed chan struct{} // a connection closed (capacity 1: a wake-up, not a count)
	stop  chan struct{} // closed with the listener
	once  sync.Once
}

func newConnLimiter(ln net.Listener, limit int) *connLimiter {
	return &connLimiter{Listener: ln, max: limit, near: limit - max(1, limit/10), freed: make(chan struct{}, 1),
		stop: make(chan struct{})}
}

// Close closes the listener, and wakes an Accept waiting for room so that it returns.
func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.stop) })
	return l.Listener.Close()
}

// trackedConn is an accepted connection; elem is its place in the idle list while it is idle.
type trackedConn struct {
	net.Conn
	l      *connLimiter
	elem   *list.Element
	closed bool
}

// Accept waits for room under the cap (closing an idle connection when the cap is near), then
// accepts.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		var evict *trackedConn
		if l.open >= l.near {
			if e := l.idle.Front(); e != nil {
				evict = e.Value.(*trackedConn)
				l.forget(evict)
			}
		}
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			if evict != nil {
				evict.Conn.Close()
			}
			break
		}
		l.mu.Unlock()
		if evict != nil {
			evict.Conn.Close()
			continue
		}
		select { // every connection is busy: wait for one to close
		case <-l.freed:
		case <-l.stop:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.mu.Lock()
		l.open--
		l.mu.Unlock()
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	tc.elem = l.idle.PushBack(tc) // idle until its first byte arrives
	l.mu.Unlock()
	return tc, nil
}

// forget takes c out of the count and the idle list, once; l.mu is held.
func (l *connLimiter) forget(c *trackedConn) {
	if c.closed {
		return
	}
	c.closed = true
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
	l.open--
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// connState is the server's ConnState hook: a connection is idle from the end of a request to
// the first byte of the next.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if tc.closed {
		return
	}
	switch state {
	case http.StateActive, http.StateHijacked:
		if tc.elem != nil {
			l.idle.Remove(tc.elem)
			tc.elem = nil
		}
	case http.StateIdle:
		if tc.elem == nil {
			tc.elem = l.idle.PushBack(tc)
		}
	case http.StateClosed:
		l.forget(tc)
	}
}

// counts is how many connections are open and how many of them idle, for tests and metrics.
func (l *connLimiter) counts() (open, idle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.idle.Len()
}
