package daemon

import (
	"io"
	"sync"
	"time"
)

// LogWriter is the daemon's log output (its stderr): a line is copied into a buffer and a
// goroutine of its own writes the buffer to the underlying writer, many lines per write. A
// request's access log line then costs a copy, not a write system call under the log handler's
// lock, and a slow stderr (a full pipe, a stalled terminal) holds no request up for long: when
// the buffer is full, a line waits at most maxWait for room, then is dropped and counted.
type LogWriter struct {
	w       io.Writer
	size    int
	maxWait time.Duration
	onDrop  func(n int64)

	mu      sync.Mutex
	buf     []byte
	room    chan struct{} // closed (and replaced) after each write to w
	dropped int64         // lines dropped since the last onDrop
	closed  bool
	wake    chan struct{} // the buffer is no longer empty
	urgent  chan struct{} // the buffer is half full, or Close was called: write it now
	done    chan struct{}
}

// Default bounds of NewLogWriter: the buffer holds thousands of access log lines, and a line
// waits no longer than a slow request would be noticed for.
const (
	defaultLogBuffer  = 1 << 20
	defaultLogMaxWait = 100 * time.Millisecond
)

// logFlushDelay is how long a line waits in the buffer for others to join it in one write: a
// write and a goroutine wake-up per line would cost more than the syscall it saves.
const logFlushDelay = 10 * time.Millisecond

// NewLogWriter starts writing to w. onDrop, when not nil, is told (on a goroutine of its own,
// after the buffer had room again) how many lines were dropped; the caller logs it. Close
// writes what is buffered and stops.
func NewLogWriter(w io.Writer, onDrop func(n int64)) *LogWriter {
	return newLogWriter(w, defaultLogBuffer, defaultLogMaxWait, onDrop)
}

func newLogWriter(w io.Writer, size int, maxWait time.Duration, onDrop func(n int64)) *LogWriter {
	l := &LogWriter{w: w, size: size, maxWait: maxWait, onDrop: onDrop,
		buf: make([]byte, 0, 64<<10), room: make(chan struct{}), wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		done: make(chan struct{})}
	go l.flush()
	return l
}

// Write buffers p, which slog gives whole, one line at a time. It never fails: a log line that
// cannot be written must not fail the request that logs it.
func (l *LogWriter) Write(p []byte) (int, error) {
	var timer *time.Timer
	l.mu.Lock()
	for !l.closed && len(l.buf)+len(p) > l.size && len(l.buf) > 0 {
		room := l.room
		l.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(l.maxWait)
			defer timer.Stop()
		}
		select {
		case <-room:
			l.mu.Lock()
			continue
		case <-timer.C:
		}
		l.mu.Lock()
		l.dropped++
		l.mu.Unlock()
		return len(p), nil
	}
	if l.closed {
		// After Close (a goroutine still logging as the daemon ends): straight through, once
		// the last batch is written.
		l.mu.Unlock()
		<-l.done
		_, _ = l.w.Write(p)
		return len(p), nil
	}
	first := len(l.buf) == 0
	l.buf = append(l.buf, p...)
	half := len(l.buf) > l.size/2
	l.mu.Unlock()
	if first {
		signal(l.wake)
	}
	if half {
		signal(l.urgent)
	}
	return len(p), nil
}

// flush writes the buffer whenever it has something, swapping it for a spare one so that
// writers append while the last batch is written.
func (l *LogWriter) flush() {
	defer close(l.done)
	spare := make([]byte, 0, 64<<10)
	delay := time.NewTimer(logFlushDelay)
	for {
		<-l.wake
		delay.Reset(logFlushDelay)
		select {
		case <-delay.C:
		case <-l.urgent:
		}
		l.mu.Lock()
		batch := l.buf
		l.buf = spare[:0]
		closed := l.closed
		l.mu.Unlock()
		if len(batch) > 0 {
			_, _ = l.w.Write(batch)
		}
		l.mu.Lock()
		close(l.room)
		l.room = make(chan struct{})
		dropped := l.dropped
		l.dropped = 0
		l.mu.Unlock()
		if dropped > 0 && l.onDrop != nil && !closed {
			go l.onDrop(dropped)
		}
		if closed {
			return
		}
		spare = batch
	}
}

// Close writes what is buffered and waits for it; later writes go straight to w.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	signal(l.wake)
	signal(l.urgent)
	<-l.done
	return nil
}

// signal wakes whoever waits on c, once, without waiting itself.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
