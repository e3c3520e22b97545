package bench

import (
	"testing"

	"github.com/storhaug/storhaug/internal/ocftest"
)

// TestMain tears down the lab the CTDB benchmarks share and removes the
// storhaug binary the benchmarks build.
func TestMain(m *testing.M) { ocftest.Main(m, ctdbLabDown) }
