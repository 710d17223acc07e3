package term

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles are erpctl's lipgloss styles. With colour off every style renders plain text.
type Styles struct {
	Bold    lipgloss.Style
	Muted   lipgloss.Style
	Header  lipgloss.Style
	Success lipgloss.Style // Ready, ok, applied
	Warning lipgloss.Style // Pending, drifted, planned
	Error   lipgloss.Style // Blocked, Failed, missing
}

// Styles returns the styles for these streams' colour setting.
func (s *IOStreams) Styles() *Styles {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.styles == nil {
		s.styles = newStyles(s.colorEnabled)
	}
	return s.styles
}

func newStyles(color bool) *Styles {
	r := lipgloss.NewRenderer(io.Discard)
	if color {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return &Styles{
		Bold:    r.NewStyle().Bold(true),
		Muted:   r.NewStyle().Foreground(lipgloss.Color("8")),
		Header:  r.NewStyle().Bold(true),
		Success: r.NewStyle().Foreground(lipgloss.Color("2")),
		Warning: r.NewStyle().Foreground(lipgloss.Color("3")),
		Error:   r.NewStyle().Foreground(lipgloss.Color("1")),
	}
}

// Status renders a tenant status, a reconcile action or a table status in its colour:
// green when all is well, yellow when work is pending, red when something needs a human.
func (st *Styles) Status(status string) string {
	switch strings.ToLower(status) {
	case "ready", "ok", "applied", "unchanged", "healthy", "running", "active", "done":
		return st.Success.Render(status)
	case "pending", "planned", "drifted", "skipped", "waiting", "paused", "approval":
		return st.Warning.Render(status)
	case "blocked", "still blocked", "failed", "missing", "unhealthy", "revoked", "halted", "held", "aborted":
		return st.Error.Render(status)
	case "unmanaged", "", "-":
		return st.Muted.Render(status)
	}
	return status
}
