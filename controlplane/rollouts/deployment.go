// Package rollouts stages the rollout of a module generation: a deployment names ordered stages,
// each a label selector with how many tenants go at once, a failure budget, an optional wait
// after it and an optional manual gate before it; a rollout is one generation going through
// them, kept in the catalog so that every process rolls out the same way and any process can
// approve, pause, resume or abort it.
package rollouts

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/modules"
)

// Deployment is how a generation rolls out: its stages, in order.
type Deployment struct {
	Stages []Stage
	File   string // where it was declared; "" for the default
}

// Stage is one step of a rollout. A tenant belongs to the first stage whose selector matches its
// labels; the tenants no stage matches form a last stage of their own.
type Stage struct {
	Name     string          `json:"name"`
	Selector labels.Selector `json:"-"`
	Parallel int             `json:"parallel,omitempty"` // tenants at once; 0: the pass's workers
	// MaxFailures is the failure budget: halt when this many tenants of the stage failed (0:
	// never), or, with Percent, this percentage of the stage's tenants (at least one).
	MaxFailures int           `json:"max_failures"`
	Percent     bool          `json:"max_failures_percent,omitempty"`
	Wait        time.Duration `json:"wait,omitempty"`    // after the stage is done, before the next starts
	Approve     bool          `json:"approve,omitempty"` // an operator must approve before the stage starts
	// Canary, on the default deployment's one stage: that many tenants first, then waves that
	// double what is done (reconcile --canary). 0: batches of Parallel.
	Canary int `json:"canary,omitempty"`
	Line   int `json:"-"` // where the stage is declared, for messages
}

// SelectorText is the stage's selector as Kubernetes writes it ("" for every tenant left).
func (s Stage) SelectorText() string { return s.Selector.String() }

// Budget is how many failures halt the stage when it has n tenants; 0: never halt.
func (s Stage) Budget(n int) int {
	if !s.Percent || s.MaxFailures == 0 {
		return s.MaxFailures
	}
	return max(1, int(math.Ceil(float64(n)*float64(s.MaxFailures)/100)))
}

// BudgetText says the budget as it was given: "3" or "2%".
func (s Stage) BudgetText() string {
	if s.Percent {
		return strconv.Itoa(s.MaxFailures) + "%"
	}
	return strconv.Itoa(s.MaxFailures)
}

// RestStage is the name of the stage of the tenants no declared stage selects.
const RestStage = "rest"

// DefaultStage is the stage of a generation without a deployment block: every tenant, a canary
// then waves that double what is done, halting after maxFailures failures (0: never).
func Default(canary, maxFailures int) *Deployment {
	return &Deployment{Stages: []Stage{{Name: "all", Canary: canary, MaxFailures: maxFailures}}}
}

// Assign returns the index of the stage tenant labels l belong to: the first whose selector
// matches, or len(Stages) for the stage of the rest.
func (d *Deployment) Assign(l labels.Labels) int {
	for i, s := range d.Stages {
		if s.Selector.Matches(l) {
			return i
		}
	}
	return len(d.Stages)
}

// WithRest is the stages with the last stage of the tenants no stage selects, when a declared
// stage has a selector (the default's one stage selects every tenant).
func (d *Deployment) WithRest(maxFailures int) []Stage {
	out := append([]Stage{}, d.Stages...)
	if len(out) == 0 || !out[len(out)-1].Selector.Empty() {
		out = append(out, Stage{Name: RestStage, MaxFailures: maxFailures})
	}
	return out
}

// FileName is the file, beside the modules, that holds the deployment block.
const FileName = "deployment.hcl"

var stageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Parse reads a deployment block from the generation's deployment source; nil source: no
// deployment (the default then applies). Errors name the file and line.
func Parse(src *modules.Source) (*Deployment, error) {
	if src == nil {
		return nil, nil
	}
	f, diags := hclsyntax.ParseConfig([]byte(src.Text), src.File, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("load deployment: %w", diags)
	}
	body := f.Body.(*hclsyntax.Body)
	at := func(r hcl.Range) string { return fmt.Sprintf("%s:%d", src.File, r.Start.Line) }
	if len(body.Attributes) > 0 {
		for _, a := range body.Attributes {
			return nil, fmt.Errorf("load deployment: %s: %s holds one deployment block, not the attribute %q", at(a.NameRange), FileName, a.Name)
		}
	}
	if len(body.Blocks) != 1 || body.Blocks[0].Type != "deployment" || len(body.Blocks[0].Labels) != 0 {
		pos := src.File
		if len(body.Blocks) > 0 {
			pos = at(body.Blocks[0].DefRange())
		}
		return nil, fmt.Errorf("load deployment: %s: %s holds exactly one deployment { stage \"NAME\" { ... } ... } block", pos, FileName)
	}
	dep := body.Blocks[0]
	d := &Deployment{File: src.File}
	for _, a := range dep.Body.Attributes {
		return nil, fmt.Errorf("load deployment: %s: a deployment holds stage blocks, not the attribute %q", at(a.NameRange), a.Name)
	}
	seen := map[string]bool{}
	for _, b := range dep.Body.Blocks {
		if b.Type != "stage" || len(b.Labels) != 1 {
			return nil, fmt.Errorf("load deployment: %s: a deployment holds stage \"NAME\" blocks, not %s", at(b.DefRange()), b.Type)
		}
		s, err := parseStage(b, at)
		if err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("load deployment: %s: stage %q is declared twice", at(b.DefRange()), s.Name)
		}
		seen[s.Name] = true
		d.Stages = append(d.Stages, s)
	}
	if len(d.Stages) == 0 {
		return nil, fmt.Errorf("load deployment: %s: the deployment declares no stage", at(dep.DefRange()))
	}
	for i, s := range d.Stages[:len(d.Stages)-1] {
		if s.Selector.Empty() {
			return nil, fmt.Errorf("load deployment: %s:%d: stage %q has no selector, so the stages after it (%s) would never have a tenant; "+
				"only the last stage may select every tenant left", src.File, s.Line, s.Name, d.Stages[i+1].Name)
		}
	}
	if seen[RestStage] && !d.Stages[len(d.Stages)-1].Selector.Empty() {
		return nil, fmt.Errorf("load deployment: %s: the name %q is the stage of the tenants no stage selects; give the stage another name", src.File, RestStage)
	}
	return d, nil
}

func parseStage(b *hclsyntax.Block, at func(hcl.Range) string) (Stage, error) {
	s := Stage{Name: b.Labels[0], Line: b.DefRange().Start.Line}
	if !stageNameRE.MatchString(s.Name) {
		return s, fmt.Errorf("load deployment: %s: stage name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", at(b.DefRange()), s.Name)
	}
	fail := func(a *hclsyntax.Attribute, format string, args ...any) (Stage, error) {
		return s, fmt.Errorf("load deployment: %s: stage %q: %s %s", at(a.NameRange), s.Name, a.Name, fmt.Sprintf(format, args...))
	}
	for _, nb := range b.Body.Blocks {
		return s, fmt.Errorf("load deployment: %s: stage %q holds attributes only, not a %s block", at(nb.DefRange()), s.Name, nb.Type)
	}
	for _, a := range b.Body.Attributes {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return fail(a, "must be a constant: %s", diags.Error())
		}
		switch a.Name {
		case "selector":
			if v.Type() != cty.String {
				return fail(a, "must be a string")
			}
			sel, err := labels.ParseSelector(v.AsString())
			if err != nil {
				return fail(a, "is not a selector: %s", strings.TrimPrefix(err.Error(), "invalid "))
			}
			s.Selector = sel
		case "parallel":
			n, ok := wholeNumber(v)
			if !ok || n < 1 || n > 1000 {
				return fail(a, "must be a whole number from 1 to 1000")
			}
			s.Parallel = n
		case "max_failures":
			switch {
			case v.Type() == cty.Number:
				n, ok := wholeNumber(v)
				if !ok || n < 0 {
					return fail(a, "must be a count (0: never halt) or a percentage such as \"2%%\"")
				}
				s.MaxFailures = n
			case v.Type() == cty.String && strings.HasSuffix(v.AsString(), "%"):
				n, err := strconv.Atoi(strings.TrimSuffix(v.AsString(), "%"))
				if err != nil || n < 1 || n > 100 {
					return fail(a, "must be a percentage from \"1%%\" to \"100%%\"")
				}
				s.MaxFailures, s.Percent = n, true
			default:
				return fail(a, "must be a count (0: never halt) or a percentage such as \"2%%\"")
			}
		case "wait":
			if v.Type() != cty.String {
				return fail(a, "must be a duration such as \"10m\"")
			}
			d, err := time.ParseDuration(v.AsString())
			if err != nil || d < 0 || d > 30*24*time.Hour {
				return fail(a, "must be a duration such as \"10m\" (at most 720h)")
			}
			s.Wait = d
		case "approve":
			if v.Type() != cty.Bool {
				return fail(a, "must be true or false")
			}
			s.Approve = v.True()
		default:
			return fail(a, "is not a stage attribute (selector, parallel, max_failures, wait, approve)")
		}
	}
	if _, ok := b.Body.Attributes["max_failures"]; !ok {
		s.MaxFailures = 1 // a declared stage halts at its first failure unless it says otherwise
	}
	return s, nil
}

func wholeNumber(v cty.Value) (int, bool) {
	if v.Type() != cty.Number || v.IsNull() {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	n, acc := bf.Int64()
	if acc != 0 || n > math.MaxInt32 || n < math.MinInt32 {
		return 0, false
	}
	return int(n), true
}
