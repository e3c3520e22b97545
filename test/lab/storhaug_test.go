package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/storhaug/storhaug/internal/need"
)

// TestInstallStorhaugDeb: given a .deb, the lab extracts its files and shows
// the nodes its /usr/lib/ocf/resource.d and /usr/sbin, links as packaged.
func TestInstallStorhaugDeb(t *testing.T) {
	need.Tool(t, "dpkg-deb", "dpkg")
	// A small package laid out as storhaug's: a binary and relative links.
	tree := t.TempDir()
	for _, d := range []string{"DEBIAN", "usr/sbin", "usr/lib/ocf/resource.d/storhaug"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	control := "Package: storhaug\nVersion: 1.2.3\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n"
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "usr/sbin/storhaug"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"IPaddr3", "CTDB"} {
		if err := os.Symlink("../../../../sbin/storhaug", filepath.Join(tree, "usr/lib/ocf/resource.d/storhaug", n)); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(t.TempDir(), "storhaug.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", tree, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}

	l := testLab(1)
	l.root = t.TempDir()
	l.opts.Storhaug = deb
	if err := l.installStorhaug(); err != nil {
		t.Fatal(err)
	}
	if got := l.Agents(); !slices.Equal(got, []string{"CTDB", "IPaddr3"}) {
		t.Errorf("Agents: %v", got)
	}
	ocf, sbin := l.storhaugDirs()
	if target, err := os.Readlink(filepath.Join(ocf, "storhaug", "IPaddr3")); err != nil || target != "../../../../sbin/storhaug" {
		t.Errorf("IPaddr3 links to %q (%v), not as packaged", target, err)
	}
	if _, err := os.Stat(filepath.Join(sbin, "storhaug")); err != nil {
		t.Error(err)
	}
	var lower []string
	for _, m := range l.nodes[0].initSpec().Mounts {
		if m.FSType == "overlay" {
			lower = append(lower, m.Target+" "+m.Data)
		}
	}
	// The package's /usr/sbin over the lab's own binaries (the fence agent).
	for _, want := range []string{"/usr/lib/ocf/resource.d lowerdir=" + ocf + ":/usr/lib/ocf/resource.d",
		"/usr/sbin lowerdir=" + sbin + ":" + filepath.Join(l.root, "sbin") + ":/usr/sbin"} {
		if !slices.Contains(lower, want) {
			t.Errorf("no overlay %q in %q", want, lower)
		}
	}
}
