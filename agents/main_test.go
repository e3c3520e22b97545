package agents_test

import (
	"testing"

	"github.com/storhaug/storhaug/internal/ocftest"
)

// TestMain removes the storhaug binary ocftest.Binary built for the tests.
func TestMain(m *testing.M) { ocftest.Main(m) }
