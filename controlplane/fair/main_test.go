package fair_test

import (
	"testing"

	"github.com/erpctl/erpctl/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
