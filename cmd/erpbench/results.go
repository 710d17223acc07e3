package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/erpctl/erpctl/internal/term"
)

// result is one scenario's figure, as printed in the table and written to results.json.
type result struct {
	Name    string   `json:"name"`
	Tenants int      `json:"tenants"`
	Median  *float64 `json:"median"`
	P95     *float64 `json:"p95"`
	Unit    string   `json:"unit"`
	Samples int      `json:"samples"`
	// Baseline is the naive figure (or the floor) measured in the same run, in Unit.
	Baseline   *float64 `json:"baseline"`
	BaselineOf string   `json:"baseline_of,omitempty"`
	// Ratio compares Median with Baseline; RatioIs says how ("baseline/median": times faster
	// than the baseline, for times; "median/baseline": share of the baseline's rate, for rates).
	Ratio   *float64           `json:"ratio"`
	RatioIs string             `json:"ratio_is,omitempty"`
	Target  string             `json:"target,omitempty"`
	Pass    *bool              `json:"pass"` // nil: no target
	Extra   map[string]float64 `json:"extra,omitempty"`
	Note    string             `json:"note,omitempty"`
	Skipped string             `json:"skipped,omitempty"`
	Error   string             `json:"error,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// skipped is a skipped result of each name, for reason.
func skipped(names []string, tenants int, reason string) []result {
	rs := make([]result, 0, len(names))
	for _, name := range names {
		rs = append(rs, result{Name: name, Tenants: tenants, Skipped: reason})
	}
	return rs
}

// setTimes sets Median, P95 and Samples from durations, in unit ("ms" or "s").
func (r *result) setTimes(ds []time.Duration, unit string) {
	r.Unit, r.Samples = unit, len(ds)
	if len(ds) == 0 {
		return
	}
	r.Median = ptr(inUnit(median(ds), unit))
	r.P95 = ptr(inUnit(percentile(ds, 95), unit))
}

// setBaseline records the baseline and the ratio: baseline/median for times (lower is
// better), median/baseline for rates (higher is better).
func (r *result) setBaseline(v float64, of string, rate bool) {
	r.Baseline, r.BaselineOf = ptr(v), of
	if r.Median == nil || *r.Median == 0 || v == 0 {
		return
	}
	if rate {
		r.Ratio, r.RatioIs = ptr(*r.Median/v), "median/baseline"
	} else {
		r.Ratio, r.RatioIs = ptr(v / *r.Median), "baseline/median"
	}
}

func (r *result) setPass(target string, ok bool) { r.Target, r.Pass = target, ptr(ok) }

func (r *result) addNote(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if r.Note != "" {
		r.Note += "; "
	}
	r.Note += s
}

func inUnit(d time.Duration, unit string) float64 {
	switch unit {
	case "ms":
		return float64(d) / float64(time.Millisecond)
	case "s":
		return d.Seconds()
	}
	panic("unknown time unit " + unit)
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

// percentile is the nearest-rank percentile p (0-100] of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// num formats a figure with about three significant digits.
func num(v *float64) string {
	if v == nil {
		return "-"
	}
	x := *v
	switch a := math.Abs(x); {
	case a >= 1000:
		return formatThousands(int64(math.Round(x)))
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
}

func formatThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// printTable writes the results as a table, then the notes it refers to.
func printTable(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSCENARIO\tTENANTS\tMEDIAN\tP95\tUNIT\tBASELINE\tRATIO\tTARGET\tOK")
	for i, r := range rs {
		med, p95, ok := num(r.Median), num(r.P95), "-"
		switch {
		case r.Error != "":
			med, p95, ok = "error", "", "FAIL"
		case r.Skipped != "":
			med, p95, ok = "skipped", "", "skip"
		case r.Pass != nil && *r.Pass:
			ok = "pass"
		case r.Pass != nil:
			ok = "FAIL"
		}
		ratio := "-"
		if r.Ratio != nil {
			ratio = num(r.Ratio) + "x"
			if r.RatioIs == "median/baseline" {
				ratio = strconv.FormatFloat(*r.Ratio*100, 'f', 0, 64) + "%"
			}
		}
		target := r.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Name, r.Tenants, med, p95, r.Unit,
			num(r.Baseline), ratio, target, ok)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "RATIO: for times, baseline/median (how many times faster than the baseline); for rates, median/baseline (share of the baseline's rate).")
	for i, r := range rs {
		var parts []string
		if r.BaselineOf != "" && r.Baseline != nil {
			parts = append(parts, "baseline: "+r.BaselineOf)
		}
		for _, s := range []string{r.Error, r.Skipped, r.Note} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "[%d] %s\n", i+1, strings.Join(parts, "; "))
		}
	}
}

// writeJSON writes the results to path, creating its directory.
func writeJSON(path string, rs []result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := term.WriteJSON(f, rs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
