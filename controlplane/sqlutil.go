package controlplane

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgtype"
)

// stringArray scans a PostgreSQL text[] through database/sql.
type stringArray struct{ dst *[]string }

func (a *stringArray) Scan(src any) error {
	return pgtype.NewMap().SQLScanner(a.dst).Scan(src)
}

var _ sql.Scanner = (*stringArray)(nil)
