package term

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestTablePlain(t *testing.T) {
	s, _, out, _ := Test()
	tbl := s.NewTable("slug", "status", "modules")
	tbl.Row("acme", s.Styles().Status("Ready"), "product, inventory")
	tbl.Row("globex-industries", s.Styles().Status("Failed"), "product")
	if err := tbl.Render(); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"SLUG                STATUS   MODULES\n" +
		"acme                Ready    product, inventory\n" +
		"globex-industries   Failed   product\n"
	if out.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", out.String(), want)
	}
}

func TestTableColor(t *testing.T) {
	s, _, out, _ := Test()
	s.SetColorEnabled(true)
	tbl := s.NewTable("slug", "status")
	tbl.Row("acme", s.Styles().Status("Ready"))
	tbl.Row("globex", s.Styles().Status("Blocked"))
	if err := tbl.Render(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("no colour codes with colour on: %q", out.String())
	}
	// Columns stay aligned: colour codes take no width.
	lines := strings.Split(strings.TrimSpace(stripANSI(out.String())), "\n")
	if len(lines) != 3 || strings.Index(lines[1], "Ready") != strings.Index(lines[2], "Blocked") {
		t.Fatalf("misaligned:\n%s", stripANSI(out.String()))
	}
	s.SetColorEnabled(false)
	out.Reset()
	tbl = s.NewTable("status")
	tbl.Row(s.Styles().Status("Ready"))
	_ = tbl.Render()
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("colour codes with colour off: %q", out.String())
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

type rec struct {
	Slug    string     `json:"slug"`
	Created time.Time  `json:"created_at"`
	Last    *time.Time `json:"last_reconciled_at"`
	Price   string     `json:"price"`
	Count   int        `json:"count"`
	Tags    []string   `json:"tags"`
	Ok      bool       `json:"ok"`
}

func TestRenderJSONAndYAML(t *testing.T) {
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	data := []rec{{Slug: "acme", Created: ts, Price: "9.50", Count: 3, Tags: []string{"a"}, Ok: true},
		{Slug: "globex", Created: ts, Price: "true", Tags: []string{}}}
	s, _, out, _ := Test()
	called := false
	if err := s.Render(FormatJSON, data, func() error { called = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Fatal("json called the table printer")
	}
	var back []map[string]any
	dec := json.NewDecoder(strings.NewReader(out.String()))
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatal("more than one JSON document")
	}
	if back[0]["slug"] != "acme" || back[0]["last_reconciled_at"] != nil {
		t.Fatalf("json: %v", back)
	}

	out.Reset()
	if err := s.Render(FormatYAML, data, nil); err != nil {
		t.Fatal(err)
	}
	var y []map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &y); err != nil {
		t.Fatal(err)
	}
	if y[0]["slug"] != "acme" || y[0]["price"] != "9.50" || y[1]["price"] != "true" || y[0]["count"] != 3 ||
		y[0]["created_at"] != "2025-03-01T12:00:00Z" || y[0]["last_reconciled_at"] != nil || y[0]["ok"] != true {
		t.Fatalf("yaml:\n%s\n%#v", out.String(), y)
	}
	if !strings.HasPrefix(out.String(), "- slug: acme\n") {
		t.Fatalf("yaml not in block style or out of order:\n%s", out.String())
	}
}

func TestParseFormat(t *testing.T) {
	for _, ok := range []string{"table", "json", "yaml", "JSON"} {
		if _, err := ParseFormat(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "table, json, yaml") {
		t.Errorf("xml: %v", err)
	}
}

func TestProgress(t *testing.T) {
	s, _, _, errOut := Test()
	if p := s.NewProgress("reconcile", 3); p != nil {
		t.Fatal("progress on a non-terminal")
	}
	s.SetStderrTTY(true)
	p := s.NewProgress("reconcile", 3)
	p.Note("reading the schemas")
	if got := errOut.String(); !strings.Contains(got, "0/3") || !strings.Contains(got, "reading the schemas") {
		t.Fatalf("progress before the first item: %q", got)
	}
	errOut.Reset()
	p.Step(false)
	if got := errOut.String(); !strings.Contains(got, "1/3") || strings.Contains(got, "reading the schemas") {
		t.Fatalf("the first item must redraw the bar without the note: %q", got)
	}
	p.Step(true)
	p.Step(false)
	p.Done()
	if !strings.Contains(errOut.String(), "3/3") || !strings.Contains(errOut.String(), "1 failed") {
		t.Fatalf("progress: %q", errOut.String())
	}
}
