package agents

// The NFSv3 clients of an address that is given up gracefully: ganesha's
// release of the address's clients (at the stop) unmonitors them, and the
// node's statd deletes their records from its monitor list on the shared
// state. The node that takes the address over would then find the list
// empty and notify nobody: the clients' locks were lost without their
// lockd reclaiming them. So the instance that stops keeps the list, before
// the release, in a file in its state directory (one per address), and the
// takeover notifies those clients too.
//
// A client that was notified reclaims its locks, and only then is in the
// new owner's statd list. If the address leaves again before (a move back
// right after a takeover: the home node's services came back), that list
// misses it. So the taker also keeps the clients that answered its
// notification (nsm-notified-<ip>), and its next stop within nsmCarry adds
// them to the clients it keeps for the next owner.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/nsm"
	"github.com/storhaug/storhaug/ocf"
)

// releasedFile is where the clients of ip released at a stop are kept:
// in the releasing node's state directory on the shared storage (nodeDir),
// which the taker reaches through its link <recovery_root>/<node>.
func releasedFile(nodeDir string, ip netip.Addr) string {
	return filepath.Join(nodeDir, "nsm-released-"+ip.String())
}

// nodeMonitors returns node's NFSv3 clients (its statd monitor list, sm or
// statd/sm in the directory <root>/<node> leads to; for this node itself,
// self, root is in its own state directory) and that directory.
func nodeMonitors(root, node string, self bool) (clients []string, nodeDir string, err error) {
	link := filepath.Join(root, node)
	fi, err := os.Lstat(link)
	switch {
	case self && errors.Is(err, os.ErrNotExist):
		link = root
	case err == nil && fi.Mode()&os.ModeSymlink == 0:
		return nil, "", fmt.Errorf("%s is not a link to its state directory", link)
	}
	d, err := filepath.EvalSymlinks(link)
	if err != nil {
		return nil, "", err
	}
	nodeDir = filepath.Dir(d)
	var errs []error
	for _, dir := range []string{nodeDir, filepath.Join(nodeDir, "statd")} {
		ms, err := nsm.ReadMonitors(dir)
		errs = append(errs, err)
		clients = append(clients, nsm.Clients(ms)...)
	}
	return clients, nodeDir, errors.Join(errs...)
}

// sharedBase is the directory of the nodes' state directories, found
// through a link to another node in root ("" if there is none): this
// node's own directory may be mounted where its parent is not shared.
func sharedBase(root string) string {
	es, _ := os.ReadDir(root)
	for _, e := range es {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if d, err := filepath.EvalSymlinks(filepath.Join(root, e.Name())); err == nil {
			return filepath.Dir(filepath.Dir(d))
		}
	}
	return ""
}

// keepReleased records, before the release, the NFSv3 clients of this
// node for the node that takes ip over. Failures are logged.
func keepReleased(r *ocf.Request, ip netip.Addr) {
	root := r.String("recovery_root")
	if root == "" || !ip.IsValid() {
		return
	}
	me := nodeName(r)
	clients, nodeDir, err := nodeMonitors(root, me, true)
	if err != nil {
		r.Log.Warnf("statd monitor list of %s: %v", me, err)
	}
	if nodeDir == "" {
		return
	}
	notified := notifiedFile(nodeDir, ip)
	if fi, err := os.Stat(notified); err == nil && time.Since(fi.ModTime()) < nsmCarry {
		carried, err := os.ReadFile(notified)
		if err != nil {
			r.Log.Warnf("NFSv3 clients of %s notified here: %v", ip, err)
		}
		clients = append(clients, strings.Fields(string(carried))...)
	}
	if len(clients) == 0 {
		return
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	if err := atomicfile.Write(releasedFile(nodeDir, ip), []byte(strings.Join(clients, "\n")+"\n"), 0o600); err != nil {
		r.Log.Warnf("the NFSv3 clients of %s will not be notified by the next owner: %v", ip, err)
		return
	}
	r.Log.Infof("NFSv3 clients of %s kept for the next owner: %s", ip, strings.Join(clients, " "))
	if err := os.Remove(notified); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.Log.Warnf("%v", err)
	}
}

// nsmCarry is how long the clients a takeover notified are carried to the
// next owner: longer than any grace period (ganesha's default is 90 s),
// after which a notified client has reclaimed (and is in a statd list) or
// no longer can.
const nsmCarry = 15 * time.Minute

// notifiedFile is where a takeover keeps the clients of ip it notified.
func notifiedFile(nodeDir string, ip netip.Addr) string {
	return filepath.Join(nodeDir, "nsm-notified-"+ip.String())
}

// keepNotified records the clients of ip this node notified (those that
// answered) for its next stop; none: the record goes.
func keepNotified(r *ocf.Request, nodeDir string, ip netip.Addr, clients []string) {
	if nodeDir == "" {
		return
	}
	f := notifiedFile(nodeDir, ip)
	if len(clients) == 0 {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.Log.Warnf("%v", err)
		}
		return
	}
	if err := atomicfile.Write(f, []byte(strings.Join(clients, "\n")+"\n"), 0o600); err != nil {
		r.Log.Warnf("the NFSv3 clients notified for %s will not be notified again if it leaves before they reclaim: %v", ip, err)
	}
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// releasedClients reads the clients kept for ip in nodeDir (none when
// there is no file).
func releasedClients(nodeDir string, ip netip.Addr) ([]string, error) {
	b, err := os.ReadFile(releasedFile(nodeDir, ip))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return strings.Fields(string(b)), err
}
