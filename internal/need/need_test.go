package need

import (
	"fmt"
	"strings"
	"testing"
)

// fakeT records how a test ended.
type fakeT struct{ skipped, failed string }

func (f *fakeT) Helper()           {}
func (f *fakeT) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeT) Fatal(args ...any) { f.failed = fmt.Sprint(args...) }

func TestMissingSkipsOutsideCIAndFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci   string
		fail bool
	}{{"", false}, {"false", false}, {"0", false}, {"true", true}, {"1", true}} {
		t.Setenv("CI", tc.ci)
		var f fakeT
		Missing(&f, "frob %s", "is missing")
		if tc.fail {
			if f.failed == "" || f.skipped != "" || !contains(f.failed, "frob is missing") {
				t.Errorf("CI=%q: failed %q skipped %q, want a failure naming what is missing", tc.ci, f.failed, f.skipped)
			}
		} else if f.skipped != "frob is missing" || f.failed != "" {
			t.Errorf("CI=%q: failed %q skipped %q, want a skip", tc.ci, f.failed, f.skipped)
		}
	}
}

func TestToolAndFile(t *testing.T) {
	t.Setenv("CI", "true")
	var f fakeT
	if p := Tool(&f, "sh", "dash"); p == "" || f.failed != "" {
		t.Errorf("Tool(sh) = %q, %q", p, f.failed)
	}
	Tool(&f, "storhaug-no-such-tool", "nothing")
	if !contains(f.failed, "storhaug-no-such-tool is not installed (Debian package nothing") {
		t.Errorf("Tool of a missing program: %q", f.failed)
	}
	f = fakeT{}
	File(&f, "/nonexistent/storhaug", "nothing")
	if f.failed == "" {
		t.Error("File of a missing file did not fail under CI")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
