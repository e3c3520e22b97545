package ganesha

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// DefaultNFSDir is where NFS-Ganesha (and statd) keep their state.
const DefaultNFSDir = "/var/lib/nfs"

// Layout is the NFS state of a cluster on shared storage, laid out as the
// original storhaug did, so that any node can read any other node's client
// records when it takes over that node's addresses:
//
//	<Root>/nfs-ganesha/<node>/ganesha/{v4recov,v4old}
//	<Root>/nfs-ganesha/<node>/ganesha/<peer> -> the peer's ganesha directory (absolute)
//	<Root>/nfs-ganesha/<node>/statd/{sm,sm.bak,state}
//	<Root>/nfs-ganesha/<node>/statd/<peer>   -> the peer's statd directory
//	<Root>/nfs-ganesha/<node>/state
//	/var/lib/nfs -> <Root>/nfs-ganesha/<node>
//
// With ganesha's RecoveryRoot at /var/lib/nfs/ganesha (its default), grace
// "5:<peer>" then reads the peer's v4recov. Root must be the same path on
// every node (as the original storhaug required too).
type Layout struct {
	Root   string   // the shared state mount
	Node   string   // this node's name
	Peers  []string // the other nodes; nil: every node directory under Root/nfs-ganesha
	NFSDir string   // the local state directory, /var/lib/nfs
}

// Base is Root/nfs-ganesha.
func (l *Layout) Base() string { return filepath.Join(l.Root, "nfs-ganesha") }

// NodeDir is the state directory of node.
func (l *Layout) NodeDir(node string) string { return filepath.Join(l.Base(), node) }

// Backup is where the node's own NFSDir is kept while the shared one is in use.
func (l *Layout) Backup() string { return l.NFSDir + ".backup" }

// CheckName refuses a node name that cannot be one directory name.
func CheckName(node string) error {
	if node == "" || node == "." || node == ".." || strings.HasPrefix(node, ".") ||
		strings.ContainsAny(node, "/\x00\n") {
		return fmt.Errorf("%q cannot name a node's state directory", node)
	}
	return nil
}

// Ensure creates what is missing of this node's state directory and of the
// peers' (so that a takeover finds them), and links this node's directory
// to each peer's. Existing files are left alone; an existing link that
// already leads to the right directory is kept.
func (l *Layout) Ensure() error {
	if err := CheckName(l.Node); err != nil {
		return err
	}
	if st, err := os.Stat(l.Root); err != nil || !st.IsDir() {
		return fmt.Errorf("state directory %s is not a directory (is the shared storage mounted?)", l.Root)
	}
	peers, err := l.peers()
	if err != nil {
		return err
	}
	for _, n := range append([]string{l.Node}, peers...) {
		if err := l.ensureNode(n); err != nil {
			return err
		}
	}
	for _, p := range peers {
		for _, sub := range []string{"ganesha", "statd"} {
			link := filepath.Join(l.NodeDir(l.Node), sub, p)
			// absolute: a relative link would climb out of a bind-mounted
			// /var/lib/nfs ("..") instead of the shared directory
			if err := ensureLink(filepath.Join(l.NodeDir(p), sub), link); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Layout) peers() ([]string, error) {
	if l.Peers != nil {
		var out []string
		for _, p := range l.Peers {
			if err := CheckName(p); err != nil {
				return nil, err
			}
			if p != l.Node {
				out = append(out, p)
			}
		}
		return out, nil
	}
	ents, err := os.ReadDir(l.Base())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && CheckName(e.Name()) == nil && e.Name() != l.Node {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (l *Layout) ensureNode(n string) error {
	d := l.NodeDir(n)
	for _, sub := range []string{"ganesha/v4recov", "ganesha/v4old", "statd/sm", "statd/sm.bak"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"state", "statd/state"} {
		p := filepath.Join(d, f)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			if err := atomicfile.Write(p, nil, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureLink makes link a symlink to target, replacing (atomically) a link
// that leads elsewhere. Anything that is not a symlink is left in place.
func ensureLink(target, link string) error {
	fi, err := os.Lstat(link)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink == 0:
		return nil // a real directory someone made: not ours to replace
	default:
		abs := target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(link), target)
		}
		have, err1 := filepath.EvalSymlinks(link)
		want, err2 := filepath.EvalSymlinks(abs)
		if err1 == nil && err2 == nil && have == want {
			return nil
		}
	}
	return symlinkAtomic(target, link)
}

func symlinkAtomic(target, link string) error {
	tmp := fmt.Sprintf("%s.tmp%d", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Active reports whether NFSDir is this node's state directory: a link to
// it, or the same directory mounted there (a bind mount set up by the admin,
// which Activate and Deactivate leave alone).
func (l *Layout) Active() bool {
	have, err1 := os.Stat(l.NFSDir)
	want, err2 := os.Stat(l.NodeDir(l.Node))
	return err1 == nil && err2 == nil && os.SameFile(have, want)
}

// Activate points NFSDir at this node's state directory. A real directory
// there is first moved to Backup (and Deactivate brings it back); a link
// that leads elsewhere is replaced.
func (l *Layout) Activate() error {
	if l.Active() {
		return nil
	}
	fi, err := os.Lstat(l.NFSDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(l.NFSDir), 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink == 0:
		if _, err := os.Lstat(l.Backup()); err == nil {
			return fmt.Errorf("cannot keep %s aside: %s already exists (move one of them away)", l.NFSDir, l.Backup())
		}
		if err := os.Rename(l.NFSDir, l.Backup()); err != nil {
			return err
		}
	}
	return symlinkAtomic(l.NodeDir(l.Node), l.NFSDir)
}

// Deactivate undoes Activate: when NFSDir is a link to this node's state
// directory it is removed, and the directory kept in Backup, if any, is put
// back. Anything else at NFSDir is left alone.
func (l *Layout) Deactivate() error {
	fi, err := os.Lstat(l.NFSDir)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, _ := os.Readlink(l.NFSDir)
		if filepath.Clean(target) != filepath.Clean(l.NodeDir(l.Node)) && !l.Active() {
			return nil // not our link
		}
		if err := os.Remove(l.NFSDir); err != nil {
			return err
		}
	} else if err == nil || !errors.Is(err, os.ErrNotExist) {
		return err // a real directory: nothing of ours to undo
	}
	if _, err := os.Lstat(l.Backup()); err == nil {
		return os.Rename(l.Backup(), l.NFSDir)
	}
	return nil
}

// LinkRecovery makes <root>/<alias> a link to the recovery directory of
// node (<root>/<node>), so that grace "5:<alias>" (an address) reads that
// node's client records. It is replaced atomically when it leads elsewhere;
// a real directory named alias is left alone. It fails when root has no
// entry for node.
func LinkRecovery(root, alias, node string) error {
	if err := CheckName(node); err != nil {
		return err
	}
	if _, err := GraceArg(TakeIP, alias); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, node)); err != nil {
		return fmt.Errorf("no recovery directory for node %s under %s", node, root)
	}
	return ensureLink(node, filepath.Join(root, alias))
}

// MaxRelease bounds the release requests one ReleaseCount asks for.
const MaxRelease = 1024

// ReleaseCount is how many grace "2:<addr>" requests release every client
// of addr from this node's ganesha: one per client record under
// <root>/v4recov (at any depth: a clustered ganesha keeps them in
// v4recov/node<id>) whose owner string contains addr, at least one.
// Ganesha matches a release against each confirmed client's owner string
// by substring (an NFSv4.0 Linux client names the server address it
// mounted in it, "Linux NFSv4.0 <client>/<server> tcp"; the record's name,
// "<client addr>-(<len>:<owner>)", carries it, hex-encoded as "0x..." when
// it cannot be a file name), and expires only the FIRST match per request.
// A missing v4recov counts as no records.
func ReleaseCount(root, addr string) (int, error) {
	dir := filepath.Join(root, "v4recov")
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p != dir && d.IsDir() && strings.Contains(recordOwner(d.Name()), addr) {
			n++
			return fs.SkipDir // a record's subdirectories are its own
		}
		return nil
	})
	return min(max(n, 1), MaxRelease), err
}

// recordOwner is the owner string in a client record's name
// "<client addr>-(<len>:<owner>)" (decoded when written in hex), or the
// whole name in another shape.
func recordOwner(name string) string {
	i := strings.Index(name, "-(")
	if i < 0 {
		return name
	}
	_, owner, ok := strings.Cut(name[i+2:], ":")
	if !ok {
		return name
	}
	owner = strings.TrimSuffix(owner, ")")
	if h, ok := strings.CutPrefix(owner, "0x"); ok {
		if b, err := hex.DecodeString(h); err == nil {
			return string(b)
		}
	}
	return owner
}

// Record is one NFSv4 client record of the fs recovery backend.
type Record struct {
	Client netip.Addr // the client's address as ganesha saw it (unmapped)
	Owner  string     // the client's owner string (co_ownerid)
	Path   string     // its directory, under v4recov
}

// Records reads the client records under <root>/v4recov (at any depth, as
// ReleaseCount does). A record whose name does not have ganesha's shape
// "<client addr>-(<len>:<owner>)" with an owner of that length (a name
// split over several directories, being longer than a file name may be)
// is left out. A missing v4recov has no records.
func Records(root string) ([]Record, error) {
	dir := filepath.Join(root, "v4recov")
	var out []Record
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p == dir || !d.IsDir() || !strings.Contains(d.Name(), "-(") {
			return nil
		}
		if r, ok := parseRecord(d.Name()); ok {
			r.Path = p
			out = append(out, r)
		}
		return fs.SkipDir
	})
	return out, err
}

// parseRecord reads a record's name.
func parseRecord(name string) (Record, bool) {
	i := strings.Index(name, "-(")
	a, err := netip.ParseAddr(name[:max(i, 0)])
	if i < 0 || err != nil || !strings.HasSuffix(name, ")") {
		return Record{}, false
	}
	n, owner, ok := strings.Cut(name[i+2:len(name)-1], ":")
	if !ok {
		return Record{}, false
	}
	want, err := strconv.Atoi(n)
	if err != nil || want != len(owner) {
		return Record{}, false
	}
	if h, ok := strings.CutPrefix(owner, "0x"); ok {
		if b, err := hex.DecodeString(h); err == nil {
			owner = string(b)
		}
	}
	if owner == "" || strings.ContainsRune(owner, 0) {
		return Record{}, false
	}
	return Record{Client: a.Unmap(), Owner: owner}, true
}

// Forget removes from <root>/v4recov the records of the clients at the
// addresses in clients (a record's directory with what it holds: ganesha
// keeps revoked delegations there), and returns how many it removed.
func Forget(root string, clients map[netip.Addr]bool) (int, error) {
	recs, err := Records(root)
	n := 0
	var errs []error
	for _, r := range recs {
		if clients[r.Client] {
			if rerr := os.RemoveAll(r.Path); rerr != nil {
				errs = append(errs, rerr)
			} else {
				n++
			}
		}
	}
	return n, errors.Join(append([]error{err}, errs...)...)
}

// takeoverSetPrefix begins the name of every takeover set.
const takeoverSetPrefix = "storhaug-take-"

// TakeoverSetGlob matches, in a node's recovery root, the takeover sets
// TakeoverSetName names.
const TakeoverSetGlob = takeoverSetPrefix + "*"

// TakeoverSetName names the takeover set (TakeoverSet) of the clients of
// addr, under the recovery root of the node taking addr over.
func TakeoverSetName(addr netip.Addr) string { return takeoverSetPrefix + addr.String() }

// TakeoverSet gathers into <root>/<name>/v4recov the client records that
// one grace "5:<name>" is to load: those under <root>/<node>/v4recov of each
// of nodes (at its top level, as the unclustered fs backend keeps them),
// except the records of the clients in skip, as links to them, replacing
// what the set held. ganesha lifts an NFSv4-only grace early only once
// every loaded client has reclaimed, so loading the records of clients
// that reclaim elsewhere (a failed node's other addresses went to other
// nodes) holds it for Grace_Period. A record whose name does not parse (a
// name split over several directories) is always linked, as is anything
// that is not a record's directory; a name found under two nodes is linked
// once. It returns how many records it linked and how many it left out.
func TakeoverSet(root, name string, nodes []string, skip map[netip.Addr]bool) (linked, skipped int, err error) {
	if _, err := GraceArg(TakeIP, name); err != nil {
		return 0, 0, err
	}
	set := filepath.Join(root, name)
	tmp := set + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "v4recov"), 0o700); err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	for _, node := range nodes {
		if err := CheckName(node); err != nil {
			return 0, 0, err
		}
		dir := filepath.Join(root, node, "v4recov")
		es, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		for _, e := range es {
			if seen[e.Name()] {
				continue
			}
			if r, ok := parseRecord(e.Name()); ok && skip[r.Client] {
				skipped++
				continue
			}
			seen[e.Name()] = true
			if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(tmp, "v4recov", e.Name())); err != nil {
				return 0, 0, err
			}
			linked++
		}
	}
	if err := os.RemoveAll(set); err != nil {
		return 0, 0, err
	}
	return linked, skipped, os.Rename(tmp, set)
}
