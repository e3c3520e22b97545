package ganesha_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/storhaug/storhaug/ganesha"
)

func exists(t *testing.T, p string, dir bool) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if st.IsDir() != dir {
		t.Fatalf("%s: IsDir = %v, want %v", p, st.IsDir(), dir)
	}
}

func TestLayoutEnsure(t *testing.T) {
	root := t.TempDir()
	l := &ganesha.Layout{Root: root, Node: "n2", Peers: []string{"n1", "n2", "n3"}, NFSDir: filepath.Join(t.TempDir(), "nfs")}
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		d := filepath.Join(root, "nfs-ganesha", n)
		for _, sub := range []string{"ganesha/v4recov", "ganesha/v4old", "statd/sm", "statd/sm.bak"} {
			exists(t, filepath.Join(d, sub), true)
		}
		exists(t, filepath.Join(d, "state"), false)
		exists(t, filepath.Join(d, "statd/state"), false)
	}
	// n2 reaches n1's records through its own tree: what grace "5:n1" reads
	os.WriteFile(filepath.Join(root, "nfs-ganesha/n1/ganesha/v4recov/rec"), nil, 0o644)
	exists(t, filepath.Join(root, "nfs-ganesha/n2/ganesha/n1/v4recov/rec"), false)
	exists(t, filepath.Join(root, "nfs-ganesha/n2/statd/n3/sm"), true)
	if _, err := os.Lstat(filepath.Join(root, "nfs-ganesha/n2/ganesha/n2")); err == nil {
		t.Fatal("a node links to itself")
	}
	// links are absolute: reached through a bind-mounted /var/lib/nfs, a
	// relative "../.." would climb out of the mount
	if tgt, _ := os.Readlink(filepath.Join(root, "nfs-ganesha/n2/ganesha/n1")); tgt != filepath.Join(root, "nfs-ganesha/n1/ganesha") {
		t.Fatalf("peer link -> %q", tgt)
	}
	// idempotent, and existing files are kept
	os.WriteFile(filepath.Join(root, "nfs-ganesha/n2/state"), []byte("keep"), 0o644)
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "nfs-ganesha/n2/state")); string(b) != "keep" {
		t.Fatal("Ensure overwrote an existing state file")
	}
	// a wrong link is replaced
	p := filepath.Join(root, "nfs-ganesha/n2/ganesha/n3")
	os.Remove(p)
	os.Symlink("/nonexistent", p)
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	exists(t, filepath.Join(p, "v4recov"), true)
}

// With no peer list, the peers are the node directories already there.
func TestLayoutDiscoversPeers(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "nfs-ganesha", "n1"), 0o755)
	os.MkdirAll(filepath.Join(root, "nfs-ganesha", ".noderefs"), 0o755)
	l := &ganesha.Layout{Root: root, Node: "n3", NFSDir: filepath.Join(t.TempDir(), "nfs")}
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	exists(t, filepath.Join(root, "nfs-ganesha/n3/ganesha/n1/v4recov"), true)
	if _, err := os.Lstat(filepath.Join(root, "nfs-ganesha/n3/ganesha/.noderefs")); err == nil {
		t.Fatal("a dot directory was taken for a node")
	}
}

func TestLayoutRefusesBadInput(t *testing.T) {
	nfs := filepath.Join(t.TempDir(), "nfs")
	if err := (&ganesha.Layout{Root: "/nonexistent/state", Node: "n1", NFSDir: nfs}).Ensure(); err == nil {
		t.Error("Ensure accepted a missing state directory")
	}
	for _, bad := range []string{"", "..", "a/b", ".hidden"} {
		if err := (&ganesha.Layout{Root: t.TempDir(), Node: bad, NFSDir: nfs}).Ensure(); err == nil {
			t.Errorf("Ensure accepted node name %q", bad)
		}
	}
}

// /var/lib/nfs: the previous directory is kept aside and comes back.
func TestLayoutActivateRestore(t *testing.T) {
	root := t.TempDir()
	nfs := filepath.Join(t.TempDir(), "nfs")
	os.MkdirAll(nfs, 0o755)
	os.WriteFile(filepath.Join(nfs, "mine"), []byte("local"), 0o644)
	l := &ganesha.Layout{Root: root, Node: "n1", NFSDir: nfs}
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	if l.Active() {
		t.Fatal("Active before Activate")
	}
	if err := l.Activate(); err != nil {
		t.Fatal(err)
	}
	if !l.Active() {
		t.Fatal("not Active after Activate")
	}
	exists(t, filepath.Join(nfs, "ganesha/v4recov"), true)
	exists(t, filepath.Join(nfs+".backup", "mine"), false)
	if err := l.Activate(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := l.Deactivate(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(nfs, "mine")); err != nil || string(b) != "local" {
		t.Fatalf("previous %s not restored: %v", nfs, err)
	}
	if _, err := os.Lstat(nfs + ".backup"); err == nil {
		t.Fatal("backup left behind")
	}
	if err := l.Deactivate(); err != nil { // idempotent, leaves the real dir
		t.Fatal(err)
	}
	exists(t, filepath.Join(nfs, "mine"), false)

	// no previous directory: the link goes, nothing comes back
	os.RemoveAll(nfs)
	if err := l.Activate(); err != nil {
		t.Fatal(err)
	}
	if err := l.Deactivate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(nfs); !os.IsNotExist(err) {
		t.Fatalf("%s left after Deactivate: %v", nfs, err)
	}

	// a stale link (another node's dir, as after a crash) is replaced
	os.Symlink(filepath.Join(root, "nfs-ganesha", "other"), nfs)
	if err := l.Activate(); err != nil || !l.Active() {
		t.Fatalf("Activate over a stale link: %v", err)
	}

	// a real directory and a backup both there: refuse, touch nothing
	os.Remove(nfs)
	os.MkdirAll(nfs, 0o755)
	os.MkdirAll(nfs+".backup", 0o755)
	if err := l.Activate(); err == nil {
		t.Fatal("Activate clobbered an existing backup")
	}
}

func TestLinkRecovery(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "n1", "v4recov", "rec"), 0o755)
	os.MkdirAll(filepath.Join(root, "n3", "v4recov"), 0o755)
	if err := ganesha.LinkRecovery(root, "2001:db8::10", "n1"); err != nil {
		t.Fatal(err)
	}
	exists(t, filepath.Join(root, "2001:db8::10", "v4recov", "rec"), true)
	if err := ganesha.LinkRecovery(root, "2001:db8::10", "n3"); err != nil { // moved on
		t.Fatal(err)
	}
	if tgt, _ := os.Readlink(filepath.Join(root, "2001:db8::10")); tgt != "n3" {
		t.Fatalf("link points at %q, want n3", tgt)
	}
	if err := ganesha.LinkRecovery(root, "198.51.100.10", "n9"); err == nil {
		t.Fatal("LinkRecovery to a missing node directory succeeded")
	}
}

// Records reads the client address and owner of each record as ganesha
// names it (fs_create_clid_name: the owner in hex when it is not fit for a
// file name; its length is checked as ganesha checks it when it reads).
func TestRecords(t *testing.T) {
	root := t.TempDir()
	v41 := "Linux NFSv4.1 k1"
	hexed := "Linux NFSv4.0 198.51.100.151/198.51.100.203 tcp"
	for _, rec := range []string{
		fmt.Sprintf("::ffff:198.51.100.151-(%d:%s)", len(v41), v41),
		fmt.Sprintf("node0/2001:db8::7-(%d:0x%x)", 2+2*len(hexed), hexed),
		"198.51.100.152-(99:too short)", // a name cut short (a crash while writing it)
		"not-a-record",
	} {
		if err := os.MkdirAll(filepath.Join(root, "v4recov", rec), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ganesha.Records(root)
	if err != nil {
		t.Fatal(err)
	}
	v4recov := filepath.Join(root, "v4recov")
	want := []ganesha.Record{
		{Client: netip.MustParseAddr("198.51.100.151"), Owner: v41, Path: filepath.Join(v4recov, fmt.Sprintf("::ffff:198.51.100.151-(%d:%s)", len(v41), v41))},
		{Client: netip.MustParseAddr("2001:db8::7"), Owner: hexed, Path: filepath.Join(v4recov, fmt.Sprintf("node0/2001:db8::7-(%d:0x%x)", 2+2*len(hexed), hexed))},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Records = %+v, want %+v", got, want)
	}
	if got, err := ganesha.Records(filepath.Join(root, "none")); err != nil || len(got) != 0 {
		t.Errorf("Records without v4recov = %v, %v", got, err)
	}
}

// Forget removes the records of the clients named, with what they hold.
func TestForget(t *testing.T) {
	root := t.TempDir()
	keep := filepath.Join(root, "v4recov", "198.51.100.152-(16:Linux NFSv4.1 k2)")
	gone := filepath.Join(root, "v4recov", "::ffff:198.51.100.151-(16:Linux NFSv4.1 k1)")
	for _, d := range []string{keep, gone} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(gone, "\x01revoked"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := ganesha.Forget(root, map[netip.Addr]bool{netip.MustParseAddr("198.51.100.151"): true})
	if err != nil || n != 1 {
		t.Fatalf("Forget = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", gone, err)
	}
	exists(t, keep, true)
}

// A takeover's set links the nodes' records but those of the clients to
// skip; a record it cannot read is linked all the same (its client cannot
// be told, and a client not loaded cannot reclaim); a name under two
// nodes is linked once; what the set held before is gone.
func TestTakeoverSet(t *testing.T) {
	root := t.TempDir()
	rec := func(node, addr, owner string) string {
		p := filepath.Join(root, node, "v4recov", fmt.Sprintf("%s-(%d:%s)", addr, len(owner), owner))
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return filepath.Base(p)
	}
	a := rec("n1", "198.51.100.151", "Linux NFSv4.1 k1")
	rec("n1", "198.51.100.152", "Linux NFSv4.1 k2")  // skipped
	long := rec("n1", "198.51.100.153-(999:cut", "") // a name split over directories
	dup := rec("n1", "::ffff:198.51.100.154", "Linux NFSv4.0 k4 tcp")
	if rec("n2", "::ffff:198.51.100.154", "Linux NFSv4.0 k4 tcp") != dup {
		t.Fatal("test records differ")
	}
	b := rec("n2", "2001:db8::155", "Linux NFSv4.2 k5")
	old := filepath.Join(root, "set", "v4recov", "stale")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	linked, skipped, err := ganesha.TakeoverSet(root, "set", []string{"n1", "n2", "n3"},
		map[netip.Addr]bool{netip.MustParseAddr("198.51.100.152"): true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	es, err := os.ReadDir(filepath.Join(root, "set", "v4recov"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fi, err := os.Stat(filepath.Join(root, "set", "v4recov", e.Name()))
		if err != nil || !fi.IsDir() {
			t.Errorf("%s does not lead to a record: %v", e.Name(), err)
		}
		got = append(got, e.Name())
	}
	want := []string{a, long, b, dup}
	slices.Sort(want)
	if !slices.Equal(got, want) || linked != 4 || skipped != 1 {
		t.Errorf("set = %q (%d linked, %d left out), want %q (4, 1)", got, linked, skipped, want)
	}
	if _, _, err := ganesha.TakeoverSet(root, "a/b", []string{"n1"}, nil); err == nil {
		t.Error("a set name with a slash was accepted")
	}
	if _, _, err := ganesha.TakeoverSet(root, "set", []string{"../n1"}, nil); err == nil {
		t.Error("a node name with a slash was accepted")
	}
}
