package controlplane

import (
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/controlplane/labels"
)

// stringArray scans a PostgreSQL text[] through database/sql.
type stringArray struct{ dst *[]string }

func (a *stringArray) Scan(src any) error {
	return pgtype.NewMap().SQLScanner(a.dst).Scan(src)
}

var _ sql.Scanner = (*stringArray)(nil)

// jsonLabels scans a jsonb object of labels through database/sql.
type jsonLabels struct{ dst *labels.Labels }

func (l *jsonLabels) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l.dst = labels.Labels{}
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan labels: unexpected %T", src)
	}
	return json.Unmarshal(b, l.dst)
}
