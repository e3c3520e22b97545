package bench

import (
	"testing"

	"github.com/storhaug/storhaug/internal/ocftest"
)

// TestMain removes the storhaug binary the benchmarks build.
func TestMain(m *testing.M) { ocftest.Main(m) }
