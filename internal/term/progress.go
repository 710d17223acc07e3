package term

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress is a one-line progress bar on stderr, drawn only when stderr is a terminal.
// Its methods may be called from several goroutines; a nil *Progress does nothing.
type Progress struct {
	w      io.Writer
	width  int
	label  string
	total  int
	styles *Styles

	mu       sync.Mutex
	note     string
	done     int
	failed   int
	lastDraw time.Time
	finished bool
}

// NewProgress returns a progress bar over total items, or nil when stderr is not a terminal.
func (s *IOStreams) NewProgress(label string, total int) *Progress {
	if !s.errTTY || total <= 0 {
		return nil
	}
	return &Progress{w: s.ErrOut, width: s.TerminalWidth(), label: label, total: total, styles: s.Styles()}
}

// Note draws the bar at once with what is being done before the first item, so that a long
// wait (reading the catalog of a big fleet) does not look like a hang; the first Step clears it.
func (p *Progress) Note(text string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.note = text
	p.lastDraw = time.Now()
	p.draw()
}

// Step counts one item done; failed marks it as a failure.
func (p *Progress) Step(failed bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	noted := p.note != ""
	p.note = ""
	if failed {
		p.failed++
	}
	if p.finished {
		return
	}
	if now := time.Now(); noted || p.done == p.total || now.Sub(p.lastDraw) >= 50*time.Millisecond {
		p.lastDraw = now
		p.draw()
	}
}

// Done clears the bar, leaving the line free for what follows.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished {
		p.finished = true
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (p *Progress) draw() {
	counts := fmt.Sprintf(" %d/%d", p.done, p.total)
	extra := ""
	if p.failed > 0 {
		extra = fmt.Sprintf("  %d failed", p.failed)
	}
	note := ""
	if p.note != "" {
		note = "  " + p.note
	}
	barWidth := p.width - len(p.label) - len(counts) - len(extra) - len(note) - 4
	barWidth = min(max(barWidth, 10), 50)
	filled := barWidth * p.done / p.total
	bar := strings.Repeat("█", filled) + p.styles.Muted.Render(strings.Repeat("░", barWidth-filled))
	if extra != "" {
		extra = p.styles.Error.Render(extra)
	}
	if note != "" {
		note = p.styles.Muted.Render(note)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s%s%s%s", p.label, bar, counts, extra, note)
}
