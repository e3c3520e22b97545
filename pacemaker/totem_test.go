package pacemaker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/cmap_totem.txt: corosync-cmapctl runtime.config.totem on a lab
// node (corosync.conf: token 1000; consensus left to its default, 1.2 x
// token).
func TestReadTotem(t *testing.T) {
	b, err := os.ReadFile("testdata/cmap_totem.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := fakeRunner{"corosync-cmapctl runtime.config.totem": string(b)}
	got, err := ReadTotem(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Totem{Token: time.Second, Consensus: 1200 * time.Millisecond}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if d := got.Detect(); d != 2200*time.Millisecond {
		t.Errorf("Detect = %v, want 2.2s", d)
	}
	for _, bad := range []string{
		"",
		"runtime.config.totem.token (u32) = 1000\n",
		"runtime.config.totem.token (str) = 1000\nruntime.config.totem.consensus (u32) = 1200\n",
		"runtime.config.totem.token (u32) = -1\nruntime.config.totem.consensus (u32) = 1200\n",
	} {
		if tt, err := ParseTotem([]byte(bad)); err == nil {
			t.Errorf("ParseTotem(%q) = %+v, want an error", bad, tt)
		}
	}
	// The token_warning key shares the token's prefix; only token counts.
	tt, err := ParseTotem([]byte("runtime.config.totem.token_warning (u32) = 75\nruntime.config.totem.token (u32) = 3650\nruntime.config.totem.consensus (u32) = 4380\n"))
	if err != nil || tt.Token != 3650*time.Millisecond || tt.Consensus != 4380*time.Millisecond {
		t.Errorf("got %+v %v", tt, err)
	}
	if _, err := ReadTotem(context.Background(), fakeRunner{}); err == nil || !strings.Contains(err.Error(), "corosync-cmapctl") {
		t.Errorf("no corosync: %v", err)
	}
}

// fakeRunner answers a command line (name and arguments, space-joined)
// with its output; any other is a failure, as a missing tool would be.
type fakeRunner map[string]string

func (f fakeRunner) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	out, ok := f[line]
	if !ok {
		return nil, &ExitError{Cmd: line, Code: 127, Stderr: "not found"}
	}
	return []byte(out), nil
}
