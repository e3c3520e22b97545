package ctdb

import (
	"context"
	"errors"
	"github.com/storhaug/storhaug/internal/need"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var errorsIs = errors.Is

type call struct {
	env  []string
	name string
	args []string
}

// fakeRunner answers calls by the command's last words.
type fakeRunner struct {
	calls []call
	reply func(args []string) (stdout, stderr string, status int, err error)
}

func (f *fakeRunner) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, []byte, int, error) {
	f.calls = append(f.calls, call{env, name, args})
	o, e, s, err := f.reply(args)
	return []byte(o), []byte(e), s, err
}

func TestToolCallsCarryTheirOwnTimeLimit(t *testing.T) {
	f := &fakeRunner{reply: func([]string) (string, string, int, error) {
		return "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|\n|2|198.51.100.13|0|0|0|1|0|0|0|0|Y|\n", "", 4, nil
	}}
	tool := &Tool{Path: "/usr/bin/ctdb", Socket: "/tmp/s", Timeout: 3 * time.Second, Runner: f}
	n, err := tool.NodeStatus(context.Background())
	if err != nil || n.PNN != 2 || !n.Disabled || !n.Healthy() {
		t.Fatalf("%+v %v (a disabled node's non-zero exit is not an error)", n, err)
	}
	c := f.calls[0]
	if strings.Join(c.args, " ") != "-t 3 -T 4 -X nodestatus" || c.name != "/usr/bin/ctdb" || len(c.env) != 1 || c.env[0] != "CTDB_SOCKET=/tmp/s" {
		t.Errorf("call %+v", c)
	}
}

func TestToolNotRunning(t *testing.T) {
	for _, file := range []string{"nodestatus-refused.err", "nodestatus-nosocket.err"} {
		stderr := string(testdata(t, file))
		f := &fakeRunner{reply: func([]string) (string, string, int, error) { return "", stderr, 1, nil }}
		tool := &Tool{Path: "ctdb", Timeout: time.Second, Runner: f}
		if _, err := tool.NodeStatus(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("%s: %v, want ErrNotRunning", file, err)
		}
	}
	f := &fakeRunner{reply: func([]string) (string, string, int, error) { return "", "ctdb_control timed out\n", 1, nil }}
	tool := &Tool{Path: "ctdb", Timeout: time.Second, Runner: f}
	if _, err := tool.NodeStatus(context.Background()); err == nil || errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("wedged daemon: %v", err)
	}
}

// A hung ctdb is ended at the tool's limit, not at the caller's deadline.
func TestToolHungCallEndsAtItsOwnLimit(t *testing.T) {
	dir := t.TempDir()
	hang := filepath.Join(dir, "ctdb")
	os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)
	tool := &Tool{Path: hang, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err := tool.NodeStatus(ctx)
	if err == nil || time.Since(t0) > 6*time.Second {
		t.Errorf("hung call: %v after %v", err, time.Since(t0))
	}
}

// The real ctdb tool, when its -T limit strikes, sends SIGTERM to its
// process group: that must not be the caller's.
func TestToolMaxRuntimeSparesCaller(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "ctdb")
	os.WriteFile(tool, []byte("#!/bin/sh\nkill -TERM 0\nsleep 5\n"), 0o755)
	_, _, _, err := Exec{}.Run(context.Background(), nil, tool)
	if err != nil {
		t.Logf("tool: %v", err)
	}
	// Still here: the SIGTERM went to the tool's own group.
}

func TestLeaderAndRoleCommandsFollowNaming(t *testing.T) {
	f := &fakeRunner{reply: func(args []string) (string, string, int, error) { return "2\n", "", 0, nil }}
	old := &Tool{Path: "ctdb", Timeout: time.Second, Runner: f, Naming: Naming{Leader: false}}
	if l, err := old.Leader(context.Background()); err != nil || l != 2 {
		t.Fatal(l, err)
	}
	old.SetLeaderRole(context.Background(), true)
	nw := &Tool{Path: "ctdb", Timeout: time.Second, Runner: f, Naming: Naming{Leader: true}}
	nw.SetLeaderRole(context.Background(), false)
	var got []string
	for _, c := range f.calls {
		got = append(got, strings.Join(c.args[4:], " "))
	}
	if strings.Join(got, ",") != "recmaster,setrecmasterrole on,setleaderrole off" {
		t.Errorf("calls %v", got)
	}
}

func TestCheckPersistent(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"secrets.tdb.0", "registry.tdb.0", "notadb"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
	}
	f := &fakeRunner{reply: func(args []string) (string, string, int, error) {
		if strings.HasSuffix(args[0], "secrets.tdb.0") {
			return "", "Failed to open secrets.tdb.0\n", 1, nil
		}
		return "{}\n", "", 0, nil
	}}
	_, err := CheckPersistent(context.Background(), f, "/usr/bin/tdbdump", dir, time.Second)
	var ce *CorruptError
	if !errors.As(err, &ce) || filepath.Base(ce.File) != "secrets.tdb.0" || !strings.Contains(err.Error(), "Failed to open") {
		t.Fatalf("err %v", err)
	}
	if len(f.calls) != 2 { // registry, then secrets; notadb skipped
		t.Errorf("calls %+v", f.calls)
	}
	f.reply = func([]string) (string, string, int, error) { return "", "", 0, nil }
	if n, err := CheckPersistent(context.Background(), f, "tdbdump", dir, time.Second); err != nil || n != 2 {
		t.Errorf("healthy: %d %v", n, err)
	}
}

// The real tdbdump on a real and a corrupt database.
func TestCheckPersistentRealTdbdump(t *testing.T) {
	need.File(t, "/usr/bin/tdbdump", "tdb-tools")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.tdb.0"), []byte("TDB file\nthis is not a tdb at all, only its first line is"), 0o600)
	_, err := CheckPersistent(context.Background(), Exec{}, "/usr/bin/tdbdump", dir, 10*time.Second)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Errorf("corrupt database passed: %v", err)
	}
}
