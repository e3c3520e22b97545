package agents

// The NFSv3 clients of an address that is given up gracefully: ganesha's
// release of the address's clients (at the stop) unmonitors them, and the
// node's statd deletes their records from its monitor list on the shared
// state. The node that takes the address over would then find the list
// empty and notify nobody: the clients' locks were lost without their
// lockd reclaiming them. So the instance that stops keeps the list, before
// the release, in a file in its state directory (one per address), and the
// takeover notifies those clients too.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	if nodeDir == "" || len(clients) == 0 {
		return
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	if err := atomicfile.Write(releasedFile(nodeDir, ip), []byte(strings.Join(clients, "\n")+"\n"), 0o600); err != nil {
		r.Log.Warnf("the NFSv3 clients of %s will not be notified by the next owner: %v", ip, err)
		return
	}
	r.Log.Infof("NFSv3 clients of %s kept for the next owner: %s", ip, strings.Join(clients, " "))
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
