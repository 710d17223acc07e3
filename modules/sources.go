package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Source is one module file as a generation keeps it: what the registry was built from, without
// depending on where the file was read.
type Source struct {
	Name    string `json:"name"`
	File    string `json:"file"` // where it was read when published: "builtin:product.hcl" or a path
	Builtin bool   `json:"builtin"`
	Text    string `json:"text"`
}

// Sources returns every module's source by name, and the deployment's when there is one.
func (r *Registry) Sources() []Source {
	out := make([]Source, 0, len(r.byName)+1)
	for _, n := range slices.Sorted(maps.Keys(r.byName)) {
		m := r.byName[n]
		out = append(out, Source{Name: m.Name, File: m.File, Builtin: m.Builtin, Text: string(m.src)})
	}
	if r.deployment != nil {
		out = append(out, *r.deployment)
	}
	return out
}

// DeploymentName is the name of the file beside the modules (deployment.hcl) that says how a
// generation rolls out: not a module.
const DeploymentName = "deployment"

// Deployment returns the source of deployment.hcl, nil when there is none. Package
// controlplane/rollouts reads it.
func (r *Registry) Deployment() *Source { return r.deployment }

// splitDeployment takes deployment.hcl out of the module sources.
func splitDeployment(srcs map[string]*Module) *Source {
	m, ok := srcs[DeploymentName]
	if !ok {
		return nil
	}
	delete(srcs, DeploymentName)
	return &Source{Name: m.Name, File: m.File, Text: string(m.src)}
}

// ContentHash identifies what the modules declare, whatever files they were read from: their
// names and texts. Two registries with equal content hashes give every tenant the same desired
// state.
func (r *Registry) ContentHash() string { return ContentHash(r.Sources()) }

// ContentHash is Registry.ContentHash of sources.
func ContentHash(srcs []Source) string {
	srcs = slices.Clone(srcs)
	slices.SortFunc(srcs, func(a, b Source) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	h.Write([]byte("erpctl modules v1\n"))
	for _, s := range srcs {
		// Each part framed by its length, so that no two different sets hash alike.
		fmt.Fprintf(h, "%d:%s%d:", len(s.Name), s.Name, len(s.Text))
		h.Write([]byte(s.Text))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// FromSources builds a registry from module sources, as Load does from files: a generation's
// modules come back as they were published.
func FromSources(srcs []Source) (*Registry, error) {
	ms := make(map[string]*Module, len(srcs))
	for _, s := range srcs {
		if !moduleNameRE.MatchString(s.Name) {
			return nil, fmt.Errorf("load module %q: the module name must match %s", s.Name, moduleNameRE)
		}
		if _, dup := ms[s.Name]; dup {
			return nil, fmt.Errorf("load module %q: given twice", s.Name)
		}
		ms[s.Name] = &Module{Name: s.Name, File: s.File, Builtin: s.Builtin, src: []byte(s.Text)}
	}
	sum := sourcesSum(ms)
	dep := splitDeployment(ms)
	r, err := build(ms)
	if err != nil {
		return nil, err
	}
	r.sum, r.deployment = sum, dep
	return r, nil
}
