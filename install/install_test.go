package install

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readlink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return s
}

func TestLink(t *testing.T) {
	root := filepath.Join(t.TempDir(), "ocf")
	bin := "/usr/sbin/storhaug"
	names := []string{"A", "B"}
	changed, err := Link(root, bin, names)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "resource.d/storhaug/A"), filepath.Join(root, "resource.d/storhaug/B")}
	if !slices.Equal(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	for _, p := range want {
		if readlink(t, p) != bin {
			t.Errorf("%s -> %s", p, readlink(t, p))
		}
	}

	// Idempotent: a second run changes nothing (not even the links' mtimes).
	before, _ := os.Lstat(want[0])
	changed, err = Link(root, bin, names)
	if err != nil || len(changed) != 0 {
		t.Errorf("second Link: changed %v, %v", changed, err)
	}
	if after, _ := os.Lstat(want[0]); !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second Link rewrote %s", want[0])
	}

	// A stale link of ours (to an older binary path) is replaced.
	os.Remove(want[1])
	os.Symlink("/opt/old/storhaug", want[1])
	changed, err = Link(root, bin, names)
	if err != nil || !slices.Equal(changed, want[1:]) || readlink(t, want[1]) != bin {
		t.Errorf("stale link: changed %v, %v, -> %s", changed, err, readlink(t, want[1]))
	}

	// A regular file is never replaced.
	os.Remove(want[0])
	os.WriteFile(want[0], []byte("#!/bin/sh\n"), 0o755)
	if _, err = Link(root, bin, names); err == nil || !strings.Contains(err.Error(), "not a symlink") {
		t.Errorf("regular file: err %v", err)
	}
	if b, _ := os.ReadFile(want[0]); string(b) != "#!/bin/sh\n" {
		t.Errorf("regular file changed: %q", b)
	}
	// No temporary links are left behind.
	ents, _ := os.ReadDir(Dir(root))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".storhaug-new") {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestUnlink(t *testing.T) {
	root := t.TempDir()
	bin := "/usr/sbin/storhaug"
	dir := Dir(root)
	if _, err := Link(root, bin, []string{"A", "B", "C"}); err != nil {
		t.Fatal(err)
	}
	// Not ours: C points elsewhere, D is another provider's agent script.
	os.Remove(filepath.Join(dir, "C"))
	os.Symlink("/other/binary", filepath.Join(dir, "C"))
	os.WriteFile(filepath.Join(dir, "D"), []byte("x"), 0o755)

	removed, err := Unlink(root, bin, []string{"A", "B", "C", "D", "E"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "A"), filepath.Join(dir, "B")}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if readlink(t, filepath.Join(dir, "C")) != "/other/binary" {
		t.Error("C changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "D")); err != nil {
		t.Errorf("D: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("non-empty dir removed: %v", err)
	}

	// Once only ours were there, the directory goes too.
	os.Remove(filepath.Join(dir, "C"))
	os.Remove(filepath.Join(dir, "D"))
	Link(root, bin, []string{"A"})
	if _, err := Unlink(root, bin, []string{"A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("empty dir left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "resource.d")); err != nil {
		t.Errorf("resource.d (not ours) removed: %v", err)
	}
	// Unlink of nothing is fine.
	if removed, err := Unlink(root, bin, []string{"A"}); err != nil || len(removed) != 0 {
		t.Errorf("Unlink again: %v %v", removed, err)
	}
}
