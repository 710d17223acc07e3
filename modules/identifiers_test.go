package modules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every name in a module file is a plain identifier, or the file does not load: the error names
// the file and the line of the name.
func TestIdentifiersRefusedAtLoad(t *testing.T) {
	long := strings.Repeat("a", 64)
	tableWith := func(table, inner string) string {
		return "schema \"tenant\" {}\ntable \"" + table + "\" {\n  schema = schema.tenant\n" + inner + "}\n"
	}
	column := func(name string) string {
		return "  column \"" + name + "\" {\n    type = text\n    null = true\n  }\n"
	}
	cases := []struct {
		name, src, want string
	}{
		{"quote in table", tableWith(`t\"x`, ""), `crm.hcl:2: table name "t\"x": only lower-case ASCII letters`},
		{"space in table", tableWith("my table", ""), `crm.hcl:2: table name "my table": only lower-case`},
		{"semicolon in table", tableWith("t;drop", ""), "crm.hcl:2: table name"},
		{"upper case table", tableWith("Things", ""), "crm.hcl:2: table name \"Things\": it must be lower case"},
		{"NUL in table", tableWith(`t\u0000x`, ""), "crm.hcl:2: table name"},
		{"64-byte table", tableWith(long, ""), "crm.hcl:2: table name \"" + long + "\": it is 64 bytes long, the limit is 63"},
		{"digit first", tableWith("1things", ""), "it must not start with a digit"},
		{"quote in column", tableWith("things", column(`a\"b`)), `crm.hcl:4: column name "a\"b"`},
		{"64-byte column", tableWith("things", column(long)), "crm.hcl:4: column name"},
		{"upper-case column", tableWith("things", column("Qty")), "crm.hcl:4: column name \"Qty\": it must be lower case"},
		{"index name", tableWith("things", column("q")+"  index \"q idx\" {\n    columns = [column.q]\n  }\n"), `crm.hcl:8: index name "q idx"`},
		{"check name", tableWith("things", column("q")+"  check \"q\\\"; drop\" {\n    expr = \"q <> ''\"\n  }\n"), `crm.hcl:8: check name`},
		{"foreign key name", tableWith("things", column("p")+"  foreign_key \"FK\" {\n    columns     = [column.p]\n    ref_columns = [table.products.column.id]\n  }\n"), `crm.hcl:8: foreign_key name "FK"`},
		{"schema name", "schema \"Tenant\" {}\n", `crm.hcl:1: schema name "Tenant"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(dir, "crm.hcl")) {
				t.Fatalf("Load: %v\nwant an error naming the file and mentioning %q", err, c.want)
			}
		})
	}
}

// A 63-byte name and names with digits and '_' load.
func TestIdentifiersAccepted(t *testing.T) {
	dir := t.TempDir()
	name := "t_" + strings.Repeat("x9", 30) + "_"
	if len(name) != MaxIdentLen {
		t.Fatalf("test name is %d bytes", len(name))
	}
	src := "schema \"tenant\" {}\ntable \"" + name + "\" {\n  schema = schema.tenant\n  column \"_q2\" {\n    type = integer\n    null = true\n  }\n  index \"" + name[:60] + "idx\" {\n    columns = [column._q2]\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := r.ModuleOfTable(name); !ok || m != "crm" {
		t.Fatalf("table %s not loaded", name)
	}
}

// --modules-dir naming a file is an error, not an empty directory.
func TestModulesDirIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "crm.hcl")
	if err := os.WriteFile(f, []byte("schema \"tenant\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Load(file): %v", err)
	}
}
