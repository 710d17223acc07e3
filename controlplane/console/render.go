package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed templates
var templateFS embed.FS

// pages are the parsed templates, one set per page (the layout and the page's content), and the
// version of the assets, which their URLs carry so that a browser may cache them for good.
type pages struct {
	sets    map[string]*template.Template
	version string
}

var funcs = template.FuncMap{
	"ago":      ago,
	"stamp":    func(t *time.Time) string { return stampOf(t) },
	"ptrTime":  func(t time.Time) *time.Time { return &t },
	"prev":     func(n int64) int64 { return n - 1 },
	"statuses": func() []string { return statuses },
	"title":    func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"add":      func(a, b int) int { return a + b },
	"short": func(h string) string {
		if len(h) > 12 {
			return h[:12]
		}
		return h
	},
	"gen":      genText,
	"lower":    strings.ToLower,
	"join":     strings.Join,
	"pct":      pct,
	"duration": func(ms float64) string { return humanMS(ms) },
	"diffLine": diffLine,
	"lines":    func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
}

func loadPages() (*pages, error) {
	layout, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "stages" {
			continue
		}
		set, err := template.Must(layout.Clone()).ParseFS(templateFS, n, "templates/stages.html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", n, err)
		}
		p.sets[name] = set
	}
	h := sha256.New()
	fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(path)
			h.Write(b)
		}
		return nil
	})
	p.version = hex.EncodeToString(h.Sum(nil))[:12]
	return p, nil
}

// page is what the layout renders around a page's content.
type page struct {
	Title    string
	Nav      string // which item of the navigation is this page
	Operator string // "" on the login page
	CSRF     string
	Live     bool // the page fetches itself again every PollMS
	PollMS   int64
	Asset    string
	D        any // the page's own data
}

// liveViews are the pages that show progress and so update themselves.
var liveViews = map[string]bool{"fleet": true, "tenants": true, "tenant": true, "rollouts": true, "rollout": true}

var navOf = map[string]string{"fleet": "fleet", "tenants": "tenants", "tenant": "tenants", "tables": "tenants",
	"generations": "generations", "diff": "generations", "rollouts": "rollouts", "rollout": "rollouts"}

// render writes page name with data; the whole page is rendered before anything is written, so
// that a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	set := c.pages.sets[name]
	pg := page{Title: title, Nav: navOf[name], Live: liveViews[name], PollMS: c.cfg.Poll.Milliseconds(), Asset: c.pages.version, D: data}
	if s != nil {
		pg.Operator, pg.CSRF = s.op.Name, s.csrf()
	}
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, "layout", pg); err != nil {
		c.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "The console could not render this page; the daemon's log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ago is a time as a person reads it at a glance, with the exact time in the element's title.
func ago(t *time.Time) template.HTML {
	if t == nil || t.IsZero() {
		return "—"
	}
	d := time.Since(*t)
	var s string
	switch {
	case d < 0:
		s = "in " + roughly(-d)
	case d < 5*time.Second:
		s = "just now"
	default:
		s = roughly(d) + " ago"
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.UTC().Format(time.RFC3339), template.HTMLEscapeString(stampOf(t)), s))
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func stampOf(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func genText(g *int64) string {
	if g == nil || *g == 0 {
		return "none"
	}
	return fmt.Sprint(*g)
}

func pct(n, of int) string {
	if of <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f", 100*float64(n)/float64(of))
}

func humanMS(ms float64) string {
	switch {
	case ms <= 0:
		return "—"
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

// diffLine classes one line of a unified diff for its colour.
func diffLine(l string) string {
	switch {
	case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		return "file"
	case strings.HasPrefix(l, "@@"):
		return "hunk"
	case strings.HasPrefix(l, "+"):
		return "add"
	case strings.HasPrefix(l, "-"):
		return "del"
	}
	return ""
}
