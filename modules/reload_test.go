package modules

import (
	"os"
	"path/filepath"
	"testing"
)

// An unchanged set of files keeps the registry value; a changed, added or removed file gives a
// new one; a broken file is an error and prev is not returned for it.
func TestReloadKeepsAnUnchangedRegistry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crm := filepath.Join(dir, "crm.hcl")
	write := func(path, src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const v1 = "schema \"tenant\" {}\ntable \"customers\" {\n  schema = schema.tenant\n  column \"name\" {\n    type = text\n  }\n}\n"
	write(crm, v1)
	r1, err := Reload(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Reload(dir, r1)
	if err != nil || r2 != r1 {
		t.Fatalf("unchanged files: got a new registry (%v)", err)
	}
	// Same bytes written again (a new mtime) are still unchanged.
	write(crm, v1)
	if r, _ := Reload(dir, r1); r != r1 {
		t.Fatal("rewriting the same text gave a new registry")
	}
	write(crm, v1+"table \"leads\" {\n  schema = schema.tenant\n}\n")
	r3, err := Reload(dir, r1)
	if err != nil || r3 == r1 {
		t.Fatalf("changed file: same registry (%v)", err)
	}
	if _, ok := r3.Module("crm"); !ok || len(r3.Resources([]string{"crm"})) != 2 {
		t.Fatalf("changed file not loaded: %v", r3.Resources([]string{"crm"}))
	}
	write(filepath.Join(dir, "extra.hcl"), "schema \"tenant\" {}\n")
	r4, err := Reload(dir, r3)
	if err != nil || r4 == r3 {
		t.Fatalf("added file: same registry (%v)", err)
	}
	if err := os.Remove(filepath.Join(dir, "extra.hcl")); err != nil {
		t.Fatal(err)
	}
	if r5, _ := Reload(dir, r4); r5 == r4 {
		t.Fatal("removed file: same registry")
	}
	write(crm, "table {")
	if r, err := Reload(dir, r3); err == nil || r != nil {
		t.Fatalf("broken file: %v, %v", r, err)
	}
}
