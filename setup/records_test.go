package setup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Teardown's removal of the triggers' owner records takes those and
// nothing else from the shared NFS state.
func TestRemoveOwnerRecords(t *testing.T) {
	mnt := t.TempDir()
	base := filepath.Join(mnt, "state", "nfs-ganesha")
	os.MkdirAll(filepath.Join(base, "n1", "ganesha", "v4recov"), 0o755)
	for _, f := range []string{"storhaug-owner-storhaug-vip-198.51.100.201-trigger", "nsm-state-198.51.100.201"} {
		if err := os.WriteFile(filepath.Join(base, f), []byte("n1 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// a takeover set: links to the client records a takeover loaded
	rec := filepath.Join(base, "n1", "ganesha", "v4recov", "198.51.100.151-(2:k1)")
	set := filepath.Join(base, "n1", "ganesha", "storhaug-take-198.51.100.201", "v4recov")
	os.MkdirAll(rec, 0o700)
	os.MkdirAll(set, 0o700)
	if err := os.Symlink(rec, filepath.Join(set, filepath.Base(rec))); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "HA_CLUSTER_NODES=\"n1,n2\"\nHA_SERVICES=\"nfs\"\nHA_VIPS=\"198.51.100.201/24\"\nHA_MNT_DIR=\""+mnt+"\"\nHA_NFS_MNT_DIR=\"state\"\n")
	removed, err := RemoveOwnerRecords(cfg)
	if err != nil || len(removed) != 2 || filepath.Base(removed[0]) != "storhaug-owner-storhaug-vip-198.51.100.201-trigger" ||
		removed[1] != filepath.Dir(set) {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if _, err := os.Stat(rec); err != nil {
		t.Errorf("the client record the set linked to: %v", err)
	}
	var left []string
	es, _ := os.ReadDir(base)
	for _, e := range es {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{"n1", "nsm-state-198.51.100.201"}) {
		t.Errorf("left %v", left)
	}
	if es, _ := os.ReadDir(filepath.Join(base, "n1", "ganesha")); len(es) != 1 || es[0].Name() != "v4recov" {
		t.Errorf("left in n1's recovery root: %v", es)
	}
}
