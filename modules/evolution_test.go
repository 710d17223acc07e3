package modules

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEvolutionBlocks(t *testing.T) {
	dir := t.TempDir()
	src := `schema "tenant" {}
table "people" {
  schema = schema.tenant
  column "remarks" {
    type = text
    null = true
  }
  index "people_remarks_idx" {
    columns = [column.remarks]
  }
}
rename "index" {
  table = "people"
  from  = "contacts_notes_idx"
  to    = "people_remarks_idx"
}
rename "column" {
  table = "people"
  from  = "notes"
  to    = "remarks"
}
rename "table" {
  from = "contacts"
  to   = "people"
}
migration "second" {
  run = "after"
  sql = ["UPDATE people SET remarks = 'a;b'", "SELECT 1"]
}
migration "first" {
  run = "before"
  sql = "SELECT 2"
}
`
	if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	enabled := r.Names()
	var kinds []string
	for _, rn := range r.Renames(enabled) {
		kinds = append(kinds, rn.Kind+":"+rn.From+">"+rn.To)
	}
	// Table renames first: the others name the table by its new name.
	if want := []string{"table:contacts>people", "column:notes>remarks", "index:contacts_notes_idx>people_remarks_idx"}; !slices.Equal(kinds, want) {
		t.Fatalf("renames: %v, want %v", kinds, want)
	}
	steps := r.Steps(enabled)
	if len(steps) != 2 || steps[0].ID() != "crm/second" || steps[0].Run != StepAfter ||
		!slices.Equal(steps[0].SQL, []string{"UPDATE people SET remarks = 'a;b'", "SELECT 1"}) ||
		steps[1].ID() != "crm/first" || steps[1].Pos != filepath.Join(dir, "crm.hcl")+":30" {
		t.Fatalf("steps: %+v", steps)
	}
	// The blocks are the loader's, not Atlas's: the desired state has the table alone.
	s, err := r.Desired(enabled, "tenant_acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Table("people"); !ok || len(s.Tables) != 5 {
		t.Fatalf("desired tables: %d", len(s.Tables))
	}
	if r.Steps([]string{"product"}) != nil || r.Renames([]string{"product"}) != nil {
		t.Fatal("another module's blocks reached product")
	}
}
