package lab

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

func TestSyncDir(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mk := func(root, rel, content string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(src, "functions", "host functions")
	mk(src, "ctdb.conf", "host conf")
	os.MkdirAll(filepath.Join(src, "events/legacy"), 0o755)
	os.Symlink("/usr/share/ctdb/events/legacy/00.ctdb.script", filepath.Join(src, "events/legacy/00.ctdb.script"))
	// The node's view after a test: conf rewritten, a script enabled, an
	// extra file, a host file removed, a symlink repointed.
	mk(dst, "ctdb.conf", "agent's conf")
	mk(dst, "public_addresses", "198.51.100.200/24 eth0")
	os.MkdirAll(filepath.Join(dst, "events/legacy"), 0o755)
	os.Symlink("/elsewhere", filepath.Join(dst, "events/legacy/00.ctdb.script"))
	os.Symlink("/usr/share/ctdb/events/legacy/50.samba.script", filepath.Join(dst, "events/legacy/50.samba.script"))

	over := map[string]string{"ctdb.conf": "lab conf", "nodes": "198.51.100.11\n"}
	changed, err := syncDir(dst, src, over)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(changed)
	want := []string{"ctdb.conf", "events/legacy/00.ctdb.script", "events/legacy/50.samba.script", "functions", "nodes", "public_addresses"}
	if !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	read := func(rel string) string { b, _ := os.ReadFile(filepath.Join(dst, rel)); return string(b) }
	if read("ctdb.conf") != "lab conf" || read("nodes") != "198.51.100.11\n" || read("functions") != "host functions" {
		t.Errorf("contents: %q %q %q", read("ctdb.conf"), read("nodes"), read("functions"))
	}
	if l, _ := os.Readlink(filepath.Join(dst, "events/legacy/00.ctdb.script")); l != "/usr/share/ctdb/events/legacy/00.ctdb.script" {
		t.Errorf("symlink %q", l)
	}
	for _, gone := range []string{"public_addresses", "events/legacy/50.samba.script"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s still there", gone)
		}
	}
	// Nothing to do the second time.
	if changed, err := syncDir(dst, src, over); err != nil || len(changed) != 0 {
		t.Errorf("second sync changed %v, %v", changed, err)
	}
}
