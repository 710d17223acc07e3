package term

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"gopkg.in/yaml.v3"
)

// Format is how a command prints its result.
type Format string

// The output formats of -o/--output.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// Formats lists the valid output formats.
var Formats = []string{string(FormatTable), string(FormatJSON), string(FormatYAML)}

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatTable, FormatJSON, FormatYAML:
		return f, nil
	}
	return "", fmt.Errorf("invalid output format %q: use one of %s", s, strings.Join(Formats, ", "))
}

// Render prints data as one indented JSON document or as YAML of the same fields, or, for the
// table format, calls human, which prints for people (tables, fields, messages). Every command
// prints its result through Render.
func (s *IOStreams) Render(format Format, data any, human func() error) error {
	switch format {
	case FormatJSON:
		return WriteJSON(s.Out, data)
	case FormatYAML:
		return WriteYAML(s.Out, data)
	default:
		return human()
	}
}

// WriteJSON writes v as one indented JSON document.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteYAML writes v as YAML with the same field names, order and values as its JSON.
func WriteYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// JSON is YAML: decoding it into a node keeps the keys' order and the JSON field names.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	blockStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	return enc.Close()
}

// blockStyle drops the flow style and quoting JSON carried in, so that the YAML reads as YAML;
// the encoder still quotes strings that would otherwise read as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Table prints rows under a header, in aligned columns without borders.
type Table struct {
	s       *IOStreams
	headers []string
	rows    [][]string
}

// NewTable starts a table with the given column headers.
func (s *IOStreams) NewTable(headers ...string) *Table {
	return &Table{s: s, headers: headers}
}

// Row adds a row; cells may carry styles.
func (t *Table) Row(cells ...string) {
	t.rows = append(t.rows, cells)
}

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Render writes the table to stdout.
func (t *Table) Render() error {
	return t.RenderTo(t.s.Out)
}

// RenderTo writes the table to w.
func (t *Table) RenderTo(w io.Writer) error {
	var buf bytes.Buffer
	pad := tw.CellPadding{Global: tw.Padding{Left: "", Right: "   ", Overwrite: true}}
	tbl := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Settings: tw.Settings{
				Separators: tw.SeparatorsNone,
				Lines:      tw.LinesNone,
			},
		})),
		tablewriter.WithHeaderConfig(tw.CellConfig{
			Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
			Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
			Padding:    pad,
		}),
		tablewriter.WithRowConfig(tw.CellConfig{
			Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
			Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
			Padding:    pad,
		}),
		tablewriter.WithTrimSpace(tw.Off),
	)
	st := t.s.Styles()
	headers := make([]any, len(t.headers))
	for i, h := range t.headers {
		headers[i] = st.Header.Render(strings.ToUpper(h))
	}
	tbl.Header(headers...)
	for _, r := range t.rows {
		cells := make([]string, len(t.headers))
		for i := range cells {
			if i < len(r) {
				cells[i] = oneLine(r[i])
			}
		}
		if err := tbl.Append(cells); err != nil {
			return err
		}
	}
	if err := tbl.Render(); err != nil {
		return err
	}
	// No trailing blanks at line ends.
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteString("\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// oneLine keeps a cell on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Field is one labelled value of a record.
type Field struct {
	Label string
	Value string
}

// PrintFields prints labelled values, one a line, the values aligned.
func (s *IOStreams) PrintFields(fields ...Field) error {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.Label)+1)
	}
	st := s.Styles()
	var b strings.Builder
	for _, f := range fields {
		label := f.Label + ":"
		b.WriteString(st.Bold.Render(label))
		b.WriteString(strings.Repeat(" ", width-len(label)+1))
		b.WriteString(f.Value)
		b.WriteString("\n")
	}
	_, err := io.WriteString(s.Out, b.String())
	return err
}
