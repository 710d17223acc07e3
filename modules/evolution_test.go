package modules

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A migration step that controls the transaction is refused at load with its file and line:
// it would commit or roll back part of its tenant's change behind erpctl's back.
func TestStepWithTransactionControlIsRefused(t *testing.T) {
	step := func(sql string) string {
		return "schema \"tenant\" {}\ntable \"notes\" {\n  schema = schema.tenant\n  column \"body\" {\n    type = text\n  }\n}\n" +
			"migration \"fill\" {\n  run = \"after\"\n  sql = [\"UPDATE notes SET body = 'commit;'\", " + sql + "]\n}\n"
	}
	for _, c := range []struct{ sql, kw string }{
		{`"COMMIT"`, "COMMIT"}, {`"commit prepared 'x'"`, "COMMIT"}, {`"  rollback;"`, "ROLLBACK"}, {`"BEGIN"`, "BEGIN"},
		{`"start transaction"`, "START TRANSACTION"}, {`"SAVEPOINT a"`, "SAVEPOINT"}, {`"release a"`, "RELEASE"},
		{`"ROLLBACK TO SAVEPOINT erpctl_evolve"`, "ROLLBACK"}, {`"end"`, "END"}, {`"Abort"`, "ABORT"},
		{`"PREPARE TRANSACTION 'x'"`, "PREPARE TRANSACTION"}, {`"-- first\n/* a /* nested */ one */ ;COMMIT"`, "COMMIT"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(step(c.sql)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if want := `crm.hcl:8: migration "fill": statement 2 is transaction control (` + c.kw + `)`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("step %s: %v, want an error mentioning %q", c.sql, err, want)
		}
	}
	// Words that only look like it load: a prepared statement, an update, a DO block, a comment.
	for _, sql := range []string{`"PREPARE q AS SELECT 1"`, `"UPDATE notes SET body = 'begin'"`, `"DO $$ BEGIN PERFORM 1; END $$"`, `"/* commit */ SELECT 1"`, `"committed_at_fill()"`} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(step(sql)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err != nil {
			t.Errorf("step %s: %v", sql, err)
		}
	}
}
