// Package labels gives tenants Kubernetes' labels: keys and values with Kubernetes' rules, edited
// as kubectl edits them (k=v, k-, --overwrite), and selected with Kubernetes' selector syntax
// (=, ==, !=, in, notin, key, !key), parsed by Kubernetes' own parser. A selector also becomes a
// SQL condition on the catalog's jsonb column of labels, which a GIN index serves.
package labels

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels are a tenant's labels.
type Labels map[string]string

// ErrInvalid is wrapped by every refusal of a label or a selector.
var ErrInvalid = errors.New("invalid")

// ValidateKey checks a key against Kubernetes' rules: an optional DNS subdomain prefix and a
// slash, then a name of at most 63 characters of letters, digits, '-', '_' and '.', starting and
// ending with a letter or digit.
func ValidateKey(k string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return fmt.Errorf("%w label key %q: %s", ErrInvalid, k, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateValue checks a value against Kubernetes' rules: empty, or at most 63 characters of
// letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
func ValidateValue(k, v string) error {
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Errorf("%w value %q of label %q: %s", ErrInvalid, v, k, strings.Join(errs, "; "))
	}
	return nil
}

// Validate checks every key and value.
func (l Labels) Validate() error {
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if err := ValidateKey(k); err != nil {
			return err
		}
		if err := ValidateValue(k, l[k]); err != nil {
			return err
		}
	}
	return nil
}

// String is the labels as kubectl shows them: k=v pairs by key, comma-separated.
func (l Labels) String() string {
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

// Edit is one label change, as kubectl label takes it: "k=v" sets k, "k-" removes it.
type Edit struct {
	Key, Value string
	Remove     bool
}

// ParseEdits parses label changes; each is checked against Kubernetes' rules, and a key may be
// named once.
func ParseEdits(args []string) ([]Edit, error) {
	var edits []Edit
	seen := map[string]bool{}
	for _, a := range args {
		var e Edit
		switch k, v, ok := strings.Cut(a, "="); {
		case ok:
			e = Edit{Key: k, Value: v}
		case strings.HasSuffix(a, "-") && !strings.Contains(a, "="):
			e = Edit{Key: strings.TrimSuffix(a, "-"), Remove: true}
		default:
			return nil, fmt.Errorf("%w label %q: give KEY=VALUE to set a label or KEY- to remove one", ErrInvalid, a)
		}
		if err := ValidateKey(e.Key); err != nil {
			return nil, err
		}
		if !e.Remove {
			if err := ValidateValue(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
		if seen[e.Key] {
			return nil, fmt.Errorf("%w labels: %q is named twice", ErrInvalid, e.Key)
		}
		seen[e.Key] = true
		edits = append(edits, e)
	}
	return edits, nil
}

// ParseSet parses k=v pairs (tenant create --label): edits that only set.
func ParseSet(args []string) (Labels, error) {
	edits, err := ParseEdits(args)
	if err != nil {
		return nil, err
	}
	out := Labels{}
	for _, e := range edits {
		if e.Remove {
			return nil, fmt.Errorf("%w label %q: give KEY=VALUE", ErrInvalid, e.Key+"-")
		}
		out[e.Key] = e.Value
	}
	return out, nil
}

// Apply returns l with the edits made. As kubectl, it refuses to change a label's value without
// overwrite; setting the value a label has already, or removing one it lacks, changes nothing.
func (l Labels) Apply(edits []Edit, overwrite bool) (Labels, error) {
	out := maps.Clone(l)
	if out == nil {
		out = Labels{}
	}
	for _, e := range edits {
		old, had := out[e.Key]
		switch {
		case e.Remove:
			delete(out, e.Key)
		case had && old != e.Value && !overwrite:
			return nil, fmt.Errorf("%w: label %q already has the value %q; give --overwrite to change it to %q", ErrInvalid, e.Key, old, e.Value)
		default:
			out[e.Key] = e.Value
		}
	}
	return out, nil
}

// Selector is a parsed Kubernetes label selector. The zero Selector selects everything.
type Selector struct {
	sel  k8slabels.Selector
	reqs k8slabels.Requirements
}

// ParseSelector parses Kubernetes' selector syntax: "tier=free,region in (eu,us),!legacy".
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{}, fmt.Errorf("%w selector: it is empty (leave -l out to select every tenant)", ErrInvalid)
	}
	sel, err := k8slabels.Parse(s)
	if err != nil {
		return Selector{}, fmt.Errorf("%w selector %q: %s", ErrInvalid, s, strings.TrimPrefix(err.Error(), "unable to parse requirement: "))
	}
	reqs, _ := sel.Requirements()
	return Selector{sel: sel, reqs: reqs}, nil
}

// Empty reports whether the selector selects every tenant.
func (s Selector) Empty() bool { return s.sel == nil || s.sel.Empty() }

// String is the selector in Kubernetes' canonical form.
func (s Selector) String() string {
	if s.sel == nil {
		return ""
	}
	return s.sel.String()
}

// Matches reports whether labels l match.
func (s Selector) Matches(l Labels) bool {
	return s.sel == nil || s.sel.Matches(k8slabels.Set(l))
}

// SQL returns a condition that holds for the rows whose jsonb column col (an expression, already
// quoted) matches, with its values appended to args as $n parameters. It keeps Kubernetes'
// meaning: != and notin also match tenants without the key; > and < need an integer value. The
// equalities are containment tests (col @> '{"k":"v"}'), which a GIN index on col serves.
func (s Selector) SQL(col string, args *[]any) string {
	if s.Empty() {
		return "true"
	}
	param := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	contains := func(k string, vs []string) string {
		ors := make([]string, 0, len(vs))
		for _, v := range vs {
			js, _ := json.Marshal(map[string]string{k: v})
			ors = append(ors, col+" @> "+param(string(js))+"::jsonb")
		}
		if len(ors) == 1 {
			return ors[0]
		}
		return "(" + strings.Join(ors, " OR ") + ")"
	}
	var conds []string
	for _, r := range s.reqs {
		k, vs := r.Key(), r.ValuesUnsorted()
		slices.Sort(vs)
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			conds = append(conds, contains(k, vs))
		case selection.NotEquals, selection.NotIn:
			conds = append(conds, "NOT "+contains(k, vs))
		case selection.Exists:
			conds = append(conds, col+" ? "+param(k))
		case selection.DoesNotExist:
			conds = append(conds, "NOT ("+col+" ? "+param(k)+")")
		case selection.GreaterThan, selection.LessThan:
			op := map[selection.Operator]string{selection.GreaterThan: ">", selection.LessThan: "<"}[r.Operator()]
			v := param(k)
			n, _ := strconv.ParseInt(vs[0], 10, 64)
			conds = append(conds, fmt.Sprintf("(%s->>%s ~ '^-?[0-9]{1,18}$' AND (%s->>%s)::bigint %s %s)", col, v, col, v, op, param(n)))
		default:
			conds = append(conds, "false")
		}
	}
	return strings.Join(conds, " AND ")
}
