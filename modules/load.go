// Package modules is the module registry: it loads and validates module HCL, adds the
// tenant-aware columns, orders modules by their foreign keys and describes their resources.
package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	builtin "github.com/erpctl/erpctl/hcl"
)

// Placeholder is the schema name module files use; the loader renames it to the tenant's schema.
const Placeholder = "tenant"

// TenantAware lists the columns the loader adds to every table that lacks them.
var TenantAware = []string{"id", "created_at", "updated_at", "created_by", "updated_by"}

// tenantAwareHCL declares the tenant-aware columns. Defaults are written as PostgreSQL prints
// them so that a re-inspected schema diffs empty.
const tenantAwareHCL = `
column "id" {
  type = bigint
  null = false
  identity {
    generated = BY_DEFAULT
  }
}
column "created_at" {
  type    = timestamptz
  null    = false
  default = sql("now()")
}
column "updated_at" {
  type    = timestamptz
  null    = false
  default = sql("now()")
}
column "created_by" {
  type = text
  null = true
}
column "updated_by" {
  type = text
  null = true
}
primary_key {
  columns = [column.id]
}
`

// tenantAwareType is the SQL type a module table's own declaration of a tenant-aware column must have.
var tenantAwareType = map[string]string{
	"id": "bigint", "created_at": "timestamptz", "updated_at": "timestamptz",
	"created_by": "text", "updated_by": "text",
}

var moduleNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// Module is one HCL file of tables.
type Module struct {
	Name    string
	File    string // where it was loaded from: "builtin:product.hcl" or a path
	Builtin bool
	Tables  []string // in file order
	Deps    []string // modules whose tables this one references, sorted
	Renames []Rename // rename blocks, in file order
	Steps   []Step   // migration blocks, in file order
	Seeds   []Seed   // rows every tenant gets once, in file order
	src     []byte
}

// Registry holds every loaded module in dependency order.
type Registry struct {
	sum         [sha256.Size]byte // of every source's name, file and text: equal sums load equally
	deployment  *Source           // deployment.hcl, when there is one: how a generation rolls out
	modules     []*Module
	byName      map[string]*Module
	tableModule map[string]string
	resources   []Resource
	enums       map[string]*Enum
}

// Load reads the built-in modules and, when dir is not empty, every *.hcl file in dir; a file
// in dir with a built-in module's name replaces it.
func Load(dir string) (*Registry, error) { return Reload(dir, nil) }

// Reload is Load, except that when the files hold exactly what prev was built from it returns
// prev itself: whatever is keyed by the registry (the data API's prepared SQL, the OpenAPI
// document) stays valid instead of being built again on every daemon pass.
func Reload(dir string, prev *Registry) (*Registry, error) {
	srcs, err := readSources(dir)
	if err != nil {
		return nil, err
	}
	sum := sourcesSum(srcs)
	if prev != nil && prev.sum == sum {
		return prev, nil
	}
	dep := splitDeployment(srcs)
	r, err := build(srcs)
	if err != nil {
		return nil, err
	}
	r.sum, r.deployment = sum, dep
	return r, nil
}

// sourcesSum hashes the module sources in name order, each framed by its length so that no two
// different sets hash alike.
func sourcesSum(srcs map[string]*Module) [sha256.Size]byte {
	names := slices.Sorted(maps.Keys(srcs))
	h := sha256.New()
	for _, n := range names {
		m := srcs[n]
		for _, part := range [][]byte{[]byte(m.Name), []byte(m.File), m.src} {
			fmt.Fprintf(h, "%d:", len(part))
			h.Write(part)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// readSources reads the module files, without parsing them.
func readSources(dir string) (map[string]*Module, error) {
	srcs := map[string]*Module{}
	entries, err := fs.ReadDir(builtin.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read built-in modules: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(builtin.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read built-in module %s: %w", e.Name(), err)
		}
		name := strings.TrimSuffix(e.Name(), ".hcl")
		srcs[name] = &Module{Name: name, File: "builtin:" + e.Name(), Builtin: true, src: b}
	}
	if dir != "" {
		files, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
		if err != nil {
			return nil, fmt.Errorf("list modules in %s: %w", dir, err)
		}
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("read modules dir: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("read modules dir %s: it is a file, not a directory", dir)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".hcl")
			if !moduleNameRE.MatchString(name) {
				return nil, fmt.Errorf("load module file %s: the module name %q must match %s", f, name, moduleNameRE)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("load module file: %w", err)
			}
			srcs[name] = &Module{Name: name, File: f, src: b}
		}
	}
	return srcs, nil
}

func build(srcs map[string]*Module) (*Registry, error) {
	r := &Registry{byName: srcs, tableModule: map[string]string{}, enums: map[string]*Enum{}}
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	// Built-ins first, so that a clash is blamed on the file in the modules dir.
	sort.Slice(names, func(i, j int) bool {
		a, b := srcs[names[i]], srcs[names[j]]
		if a.Builtin != b.Builtin {
			return a.Builtin
		}
		return a.Name < b.Name
	})
	where := map[string]string{} // table → "file:line" of its declaration
	var enums []*Enum
	for _, n := range names {
		m := srcs[n]
		f, diags := hclsyntax.ParseConfig(m.src, m.File, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("load module %q: %w", n, diags)
		}
		if err := checkIdentifiers(n, m.File, f.Body.(*hclsyntax.Body)); err != nil {
			return nil, err
		}
		es, err := r.addBlocks(m, f.Body.(*hclsyntax.Body).Blocks, where)
		if err != nil {
			return nil, err
		}
		enums = append(enums, es...)
	}
	for _, e := range enums {
		if err := r.addEnum(e, where); err != nil {
			return nil, err
		}
	}
	realm, err := evalModules(srcs, names)
	if err != nil {
		return nil, err
	}
	if err := r.checkRenames(declaredObjects(realm)); err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := checkSeeds(srcs[n], realm); err != nil {
			return nil, err
		}
	}
	if err := r.addDeps(srcs, realm); err != nil {
		return nil, err
	}
	for _, m := range srcs {
		sort.Strings(m.Deps)
	}
	order, err := topoSort(srcs, names)
	if err != nil {
		return nil, err
	}
	r.modules = order
	r.resources = describe(r, realm)
	return r, nil
}

// addTable records table block b of module m, declared at pos; where holds the tables seen so far.
func (r *Registry) addTable(m *Module, b *hclsyntax.Block, pos string, where map[string]string) error {
	t := b.Labels[0]
	if strings.HasPrefix(t, "pg_") {
		// Tenant SQL runs unqualified under search_path, where pg_catalog comes first.
		return fmt.Errorf("load module %q: %s: table %q: names starting with pg_ are reserved by PostgreSQL", m.Name, pos, t)
	}
	if prev, ok := where[t]; ok {
		return fmt.Errorf("load module %q: %s: table %q is already declared by module %q at %s", m.Name, pos, t, r.tableModule[t], prev)
	}
	if err := checkTableBlock(m.Name, b); err != nil {
		return err
	}
	where[t] = pos
	r.tableModule[t] = m.Name
	m.Tables = append(m.Tables, t)
	return nil
}

// topoSort orders modules so that each comes after the modules it depends on.
func topoSort(srcs map[string]*Module, names []string) ([]*Module, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var out []*Module
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, n)
			return fmt.Errorf("load modules: foreign keys form a cycle: %s", strings.Join(append(path[i:], n), " -> "))
		}
		state[n] = visiting
		for _, d := range srcs[n].Deps {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = done
		out = append(out, srcs[n])
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// evalModules parses the given modules into one parser, adds the tenant-aware columns and
// evaluates them together, so that foreign keys across files resolve.
func evalModules(srcs map[string]*Module, names []string) (*schema.Realm, error) {
	p := hclparse.NewParser()
	declared := map[string]tableDecl{} // table → what its block declares itself
	schemaSeen := false
	for _, n := range names {
		m := srcs[n]
		f, diags := p.ParseHCL(m.src, m.File)
		if diags.HasErrors() {
			return nil, fmt.Errorf("load module %q: %w", n, diags)
		}
		stripEvolution(f)
		body := f.Body.(*hclsyntax.Body)
		body.Blocks, schemaSeen = dropRepeatedSchema(body.Blocks, schemaSeen)
		// Seeds are erpctl's, not Atlas's: they leave the body Atlas evaluates.
		body.Blocks = slices.DeleteFunc(body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "seed" })
		for _, b := range body.Blocks {
			if b.Type != "table" {
				continue
			}
			d, err := addTenantAware(b)
			if err != nil {
				return nil, fmt.Errorf("load module %q: %w", n, err)
			}
			d.module = n
			declared[b.Labels[0]] = d
		}
	}
	var realm schema.Realm
	if err := postgres.EvalHCL.Eval(p, &realm, nil); err != nil {
		return nil, fmt.Errorf("load modules %s: %w", strings.Join(names, ", "), err)
	}
	// Each file declares the placeholder schema; Atlas makes one schema per declaration, so
	// gather every table under the first.
	if len(realm.Schemas) == 0 {
		return nil, fmt.Errorf("load modules %s: no schema %q declared", strings.Join(names, ", "), Placeholder)
	}
	s0 := realm.Schemas[0]
	for _, s := range realm.Schemas[1:] {
		for _, t := range s.Tables {
			t.Schema = s0
			s0.Tables = append(s0.Tables, t)
		}
	}
	gatherObjects(s0, realm.Schemas[1:])
	realm.Schemas = realm.Schemas[:1]
	for _, t := range realm.Schemas[0].Tables {
		if err := checkTenantAware(t, declared[t.Name]); err != nil {
			return nil, err
		}
		if err := checkDefaults(t, declared[t.Name]); err != nil {
			return nil, err
		}
	}
	return &realm, nil
}

// addTenantAware appends to a table block the tenant-aware columns (and primary key) it lacks,
// and returns where the block itself declares any of them. The new blocks are parsed from
// their own source so that positions in the module file stay true in error messages.
func addTenantAware(table *hclsyntax.Block) (tableDecl, error) {
	have := map[string]hcl.Range{}
	d := tableDecl{cols: have, defaults: map[string]hcl.Range{}, block: table.DefRange()}
	hasPK := false
	for _, b := range table.Body.Blocks {
		if a, ok := b.Body.Attributes["default"]; ok && b.Type == "column" && len(b.Labels) == 1 {
			d.defaults[b.Labels[0]] = a.SrcRange
		}
		switch {
		case b.Type == "column" && len(b.Labels) == 1 && tenantAwareType[b.Labels[0]] != "":
			have[b.Labels[0]] = b.DefRange()
		case b.Type == "primary_key":
			hasPK, d.pk = true, b.DefRange()
		}
	}
	extra, diags := hclsyntax.ParseConfig([]byte(tenantAwareHCL), "tenant-aware columns", hcl.InitialPos)
	if diags.HasErrors() {
		return d, diags
	}
	for _, b := range extra.Body.(*hclsyntax.Body).Blocks {
		switch {
		case b.Type == "primary_key" && hasPK:
		case b.Type == "column" && have[b.Labels[0]] != (hcl.Range{}):
		case b.Type == "column" && b.Labels[0] == "id":
			// id leads, as a primary key column conventionally does.
			table.Body.Blocks = append([]*hclsyntax.Block{b}, table.Body.Blocks...)
		default:
			table.Body.Blocks = append(table.Body.Blocks, b)
		}
	}
	return d, nil
}

// Modules returns every module, each after the modules it depends on.
func (r *Registry) Modules() []*Module { return r.modules }

// Module returns the module called name.
func (r *Registry) Module(name string) (*Module, bool) {
	m, ok := r.byName[name]
	return m, ok
}

// Names returns every module name in dependency order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.modules))
	for i, m := range r.modules {
		out[i] = m.Name
	}
	return out
}

// ErrUnknownModule is wrapped by errors about a module name no file declares.
var ErrUnknownModule = errors.New("unknown module")

// Closure returns names plus every module they depend on, in dependency order.
func (r *Registry) Closure(names []string) ([]string, error) {
	want := map[string]bool{}
	var add func(n string) error
	add = func(n string) error {
		m, ok := r.byName[n]
		if !ok {
			return fmt.Errorf("%w %q (known: %s)", ErrUnknownModule, n, strings.Join(r.Names(), ", "))
		}
		if want[n] {
			return nil
		}
		want[n] = true
		for _, d := range m.Deps {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, m := range r.modules {
		if want[m.Name] {
			out = append(out, m.Name)
		}
	}
	return out, nil
}

// Dependents returns the enabled modules (other than name) that need name.
func (r *Registry) Dependents(name string, enabled []string) []string {
	var out []string
	for _, e := range enabled {
		if e == name {
			continue
		}
		if c, err := r.Closure([]string{e}); err == nil && slices.Contains(c, name) {
			out = append(out, e)
		}
	}
	return out
}

// Desired returns the desired state of a tenant schema called schemaName with the given modules
// (a closure, as Closure returns). Each call evaluates afresh: the result is the caller's to rename
// or change.
func (r *Registry) Desired(enabled []string, schemaName string) (*schema.Schema, error) {
	srcs := make(map[string]*Module, len(enabled))
	for _, n := range enabled {
		m, ok := r.byName[n]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownModule, n)
		}
		srcs[n] = m
	}
	if len(srcs) == 0 {
		return schema.New(schemaName), nil
	}
	realm, err := evalModules(srcs, enabled)
	if err != nil {
		return nil, err
	}
	s := realm.Schemas[0]
	s.Name = schemaName
	s.Realm = nil
	return s, nil
}

// Hash identifies the desired state of a set of enabled modules: equal hashes, equal schemas.
func (r *Registry) Hash(enabled []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "erpctl desired state v1\n%s\n", tenantAwareHCL)
	for _, n := range enabled {
		m := r.byName[n]
		if m == nil {
			fmt.Fprintf(h, "missing module %s\n", n)
			continue
		}
		fmt.Fprintf(h, "module %s %d\n", n, len(m.src))
		h.Write(m.src)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// ModuleOfTable returns the module that declares table.
func (r *Registry) ModuleOfTable(table string) (string, bool) {
	m, ok := r.tableModule[table]
	return m, ok
}

// addBlocks takes the top-level blocks of module m's file: tables and seeds into m and r, rename
// and migration blocks into m; it returns the enums, which are added once every table is known.
func (r *Registry) addBlocks(m *Module, blocks []*hclsyntax.Block, where map[string]string) ([]*Enum, error) {
	n := m.Name
	var enums []*Enum
	for _, b := range blocks {
		pos := fmt.Sprintf("%s:%d", m.File, b.DefRange().Start.Line)
		switch {
		case b.Type == "schema" && len(b.Labels) == 1 && b.Labels[0] == Placeholder:
		case b.Type == "schema":
			return nil, fmt.Errorf("load module %q: %s: declare only the placeholder schema \"tenant\", not %q", n, pos, strings.Join(b.Labels, " "))
		case b.Type == "seed" && len(b.Labels) == 1:
			seed, err := parseSeed(pos, b)
			if err != nil {
				return nil, fmt.Errorf("load module %q: %w", n, err)
			}
			m.Seeds = append(m.Seeds, seed)
		case b.Type == "table" && len(b.Labels) == 1:
			if err := r.addTable(m, b, pos, where); err != nil {
				return nil, err
			}
		case b.Type == "enum" && len(b.Labels) == 1:
			e, err := checkEnum(n, pos, b)
			if err != nil {
				return nil, err
			}
			enums = append(enums, e)
		default:
			if ok, err := m.evolutionBlock(b, pos); ok {
				if err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("load module %q: %s: a module file holds only schema \"tenant\", table, enum, rename, migration and seed blocks, not %q", n, pos, b.Type)
		}
	}
	return enums, nil
}

// addDeps records each module's dependencies, from its tables' foreign keys and enum types,
// once every module's tables are known.
func (r *Registry) addDeps(srcs map[string]*Module, realm *schema.Realm) error {
	for _, s := range realm.Schemas {
		for _, t := range s.Tables {
			m := srcs[r.tableModule[t.Name]]
			for _, dep := range r.enumDeps(t) {
				if dep != m.Name && !slices.Contains(m.Deps, dep) {
					m.Deps = append(m.Deps, dep)
				}
			}
			for _, fk := range t.ForeignKeys {
				if fk.RefTable == nil {
					continue
				}
				dep, ok := r.tableModule[fk.RefTable.Name]
				if !ok {
					return fmt.Errorf("load module %q (%s): table %q: foreign key %q references table %q, which no module declares", m.Name, m.File, t.Name, fk.Symbol, fk.RefTable.Name)
				}
				if dep != m.Name && !slices.Contains(m.Deps, dep) {
					m.Deps = append(m.Deps, dep)
				}
			}
		}
	}
	return nil
}
