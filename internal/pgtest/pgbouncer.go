package pgtest

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// The PgBouncer of this test binary, started by the first Pooled call and stopped by Main.
var bouncer struct {
	once sync.Once
	b    *pgcluster.Bouncer
	err  error
}

// PoolSize is how many server connections the PgBouncer of Pooled has for each database and user.
const PoolSize = pgcluster.BouncerPoolSize

// Pooled returns url (one of NewDB's or NewOwnedDB's) as reached through PgBouncer in transaction
// mode, the way operators put one in front of PostgreSQL (see pgcluster.Bouncer). The test
// binary's one PgBouncer starts on first use. Without a pgbouncer binary the test is skipped,
// unless CI is set: there `make test` has installed it, so its absence is a failure.
func Pooled(t testing.TB, url string) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no test server: call pgtest.Main from TestMain")
	}
	bouncer.once.Do(func() { bouncer.b, bouncer.err = pgcluster.StartBouncer(adminURL) })
	if errors.Is(bouncer.err, pgcluster.ErrNoPgBouncer) && os.Getenv("CI") == "" {
		t.Skipf("pgtest: %v", bouncer.err)
	}
	if bouncer.err != nil {
		t.Fatalf("pgtest: start PgBouncer: %v", bouncer.err)
	}
	u, err := bouncer.b.URL(url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// stopPgBouncer stops the PgBouncer if one was started.
func stopPgBouncer() {
	if bouncer.b != nil {
		bouncer.b.Stop()
	}
}
