package agents

// ganesha_trigger: puts NFS-Ganesha into grace on the node that takes over a
// virtual IP, for the clients of the node that had it. It runs as a clone
// (clone-max=1, notify=true) colocated with and ordered after the VIP, and
// acts on the notifications Pacemaker sends around its own start and stop.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/nsm"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/pacemaker"
	"github.com/storhaug/storhaug/tickle"
)

var ganeshaTriggerAgent = sync.OnceValue(func() *ocf.Agent { return newGaneshaTriggerAgent(cibOwners{}) })

// newGaneshaTriggerAgent declares the agent, its starts recording the
// address's owner in owners.
func newGaneshaTriggerAgent(owners ownerStore) *ocf.Agent {
	return &ocf.Agent{
		Name:      "ganesha_trigger",
		Version:   "1.0",
		ShortDesc: "NFS-Ganesha grace on VIP takeover",
		LongDesc: `Sends NFS-Ganesha's grace requests over D-Bus when a virtual IP moves, so that the NFS clients of the node
that had the address can reclaim their locks and state on the node that takes it over.
Configure it as a clone with clone-max=1 and notify=true, colocated with the VIP but ordered BEFORE it (and after the
ganesha clone), as storhaug setup does: its start, on the node taking the address over, sends grace "5:NAME" to the
local ganesha before the address comes up, NAME being the node that started it last before (recorded by every start
in the file storhaug-owner-<resource> on the shared storage, beside the nodes' state directories that recovery_root
links to: a file, because a change to the CIB would delay the address's start; without shared state directories, in
the permanent node attribute storhaug-owner-<resource>), so that no client reconnecting to the address (on its
own or tickled) finds a ganesha that is not in grace and gets fresh state that conflicts with what is to be reclaimed.
ganesha reads NAME's client records from <RecoveryRoot>/NAME/v4recov; with parameter tickle_dir, it is given instead
(grace "5:storhaug-take-IP", a directory of links to them under recovery_root) NAME's records but those of the clients
that, by tickle_dir's lists, were connected to other addresses and not to this one: they reclaim where those addresses
went, and loaded here they would hold an NFSv4-only grace to its end (a failed node's addresses spread over several
nodes, a failback); then the records there of
the clients that were connected to the address (and to no other address) are removed, being this node's now,
so that they do not hold NAME's grace again when it restarts or is taken over. A grace request ganesha refuses fails the start
with ganesha's reason, and the address does not come up. The post-start notification takes over, the same way, the
nodes Pacemaker reports stopped in that transition that start did not know of (nothing when no node was stopped: the
first start); an instance restarted in place (ganesha restarted under it) takes its own node's clients back, as its
stop released them. The stop of a started instance (which runs only when the address really leaves: a pre-stop
notification may be followed by an aborted transition and no stop) sends "2:IP" (parameter ip) to release
the clients of the address it gives up, in both name forms: ganesha matches a release against its clients' owner
strings, which name the server address the client mounted (NFSv4.0), never a node; the request is repeated once per
client record of this node that names the address; with parameter tickle_dir, the NFSv4.1+ clients of this node that
were connected to the address are released too, by their owner strings. Without parameter ip nothing can be released (a warning says so).
With name_form=ip, NAME is the address in parameter ip instead of a node name, and <recovery_root>/<ip> is first
pointed at the previous owner's recovery directory.
After the takeover, the NFSv3 clients in the previous owner's statd monitor list (found through the link
<recovery_root>/NAME of the shared state layout: sm or statd/sm beside it) are sent NSM SM_NOTIFY from the address in
parameter ip, naming that address, so that their lockd reclaims its locks here (with the clients the stop found
there before its release, which unmonitors them, kept in nsm-released-IP in the releasing node's directory, as ganesha's
start unmonitors every client; the lists of every node are read, as the address may have passed through a node that
never had it up, and each is removed once notified); the state number is kept per address
on the shared storage. A helper process left by the action sends them as soon as the address is up here (within the
action's timeout); a client that does not answer within 10 s is logged and left. The transition does not wait for it.`,
		Params: []ocf.Param{
			{Name: "name_form", Type: ocf.Select, Options: []string{"node", "ip"}, Default: "node", ShortDesc: "node name or address",
				LongDesc: "What names the clients taken over in grace requests: node, the stopped node's name (as the original storhaug did); " +
					"ip, the address in parameter ip."},
			{Name: "ip", ShortDesc: "the virtual IP",
				LongDesc: "The virtual IP this trigger follows (IPv4 or IPv6). Required with name_form=ip; with name_form=node, " +
					"needed to release the address's clients when the trigger stops (ganesha releases clients by address)."},
			{Name: "recovery_root", Default: "/var/lib/nfs/ganesha", ShortDesc: "ganesha's RecoveryRoot",
				LongDesc: "ganesha's RecoveryRoot (checked for the stopped node's records before a takeover; this node's records in <recovery_root>/v4recov " +
					"count the release requests). With name_form=ip, <recovery_root>/<ip> is linked to <recovery_root>/<stopped node> " +
					"before grace, so the address's clients are that node's. Empty: no link is made."},
			{Name: "dbus_address", ShortDesc: "D-Bus address",
				LongDesc: "The address of the bus ganesha.nfsd is on. Empty: the system bus."},
			{Name: "tickle_dir", ShortDesc: "the address's recorded connections",
				LongDesc: "The VIP's IPaddr3 tickle_dir, where its stop records the address's TCP connections. ganesha's release by " +
					"address matches only NFSv4.0 clients (whose owner string names the server address); the NFSv4.1 and later " +
					"clients of this node's records that were connected to the address are released too, by their owner " +
					"string, so that their state and locks here are dropped before they reclaim them on the node that takes the " +
					"address over (else ganesha there finds the locks still held by this node: the reclaim is denied, and the " +
					"clients lose their locks). A client connected through another address of this node too loses its state " +
					"here for that one as well. Empty: NFSv4.1+ clients are left to their lease."},
		},
		Actions: []ocf.Action{
			{Name: "start", Timeout: 20 * time.Second, Handler: func(r *ocf.Request) error { return triggerStart(r, owners) }},
			{Name: "stop", Timeout: 20 * time.Second, Handler: triggerStop},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: triggerMonitor},
			{Name: "notify", Timeout: 30 * time.Second, Handler: triggerNotify},
			{Name: "validate-all", Timeout: 20 * time.Second, Handler: triggerValidate},
			{Name: triggerNSMAction, Timeout: 30 * time.Second, Handler: triggerNSMHelper, Hidden: true},
		},
	}
}

// triggerState is the file that says this instance is started.
func triggerState(r *ocf.Request) string {
	inst := r.Instance
	if inst == "" {
		inst = "default"
	}
	return r.StateFile("ganesha_trigger", inst, "")
}

// triggerIP is the ip parameter, canonical (as ganesha prints addresses),
// or an OCF_ERR_CONFIGURED error; the zero Addr when unset in node form.
func triggerIP(r *ocf.Request) (netip.Addr, error) {
	s := r.String("ip")
	if s == "" {
		if r.String("name_form") == "ip" {
			return netip.Addr{}, ocf.Errorf(ocf.ErrConfigured, "parameter ip is required with name_form=ip")
		}
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, ocf.Errorf(ocf.ErrConfigured, "parameter ip: %q is not an IPv4 or IPv6 address (without zone)", s)
	}
	return a.Unmap(), nil
}

func triggerValidate(r *ocf.Request) error {
	_, err := triggerIP(r)
	return err
}

func triggerStart(r *ocf.Request, owners ownerStore) error {
	if err := triggerValidate(r); err != nil {
		return err
	}
	// Who had the address before: Pacemaker names the stopped node in the
	// post-start notification only when it stopped the instance there (or
	// fenced the node). When a node is lost without fencing, nobody is
	// named; the recorded owner still tells.
	var prev string
	if rsc := triggerResource(r); rsc != "" && r.NodeName() != "" {
		ctx, cancel := context.WithTimeout(r.Context(), ownerTimeout)
		defer cancel()
		if base := sharedBase(r.String("recovery_root")); base != "" {
			owners = sharedOwners{dir: base, cib: owners}
		}
		var seq int64
		var err error
		if prev, seq, err = owners.Latest(ctx, rsc); err != nil {
			// without the highest number, recording could only mislead
			r.Log.Warnf("cannot read the previous owner of %s: %v", rsc, err)
		} else if err := owners.Record(ctx, rsc, r.NodeName(), seq+1); err != nil {
			r.Log.Warnf("cannot record %s as the owner of %s: %v", r.NodeName(), rsc, err)
		}
	}
	// The takeover comes now, before the address: the VIP is ordered
	// after this clone (after its post-start notification, even), so a
	// client that reconnects finds ganesha here already in grace for it,
	// and cannot be handed fresh state that conflicts with what it, or the
	// clients of the node that had the address, come to reclaim.
	var taken string
	if me := r.NodeName(); prev != "" && me != "" && prev != me {
		ip, _ := triggerIP(r)
		if err := takeOver(r, ip, []string{prev}); err != nil {
			return err
		}
		taken = prev
		startNSM(r, ip, []string{prev})
	}
	p := triggerState(r)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "state directory: %w", err)
	}
	if err := atomicfile.Write(p, []byte("previous="+prev+"\ntaken="+taken+"\n"), 0o644); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "cannot record the start: %w", err)
	}
	return nil
}

// takeOver sends the local ganesha grace "5:NAME" for the clients of the
// stopped nodes (name_form=node) or of the address (name_form=ip, whose
// recovery directory is first linked to the first stopped node's).
func takeOver(r *ocf.Request, ip netip.Addr, stopped []string) error {
	root := r.String("recovery_root")
	if r.String("name_form") == "ip" {
		if root != "" {
			if err := ganesha.LinkRecovery(root, ip.String(), stopped[0]); err != nil {
				r.Log.Warnf("grace for %s will not find %s's client records: %v", ip, stopped[0], err)
			}
		}
		return sendGrace(r, ganesha.TakeIP, []string{ip.String()}, true)
	}
	if root != "" {
		for _, s := range stopped {
			if _, err := os.Stat(filepath.Join(root, s, "v4recov")); err != nil {
				r.Log.Warnf("%s has no v4recov under %s: ganesha will not find %s's client records "+
					"(a node added after ganesha started here is linked at ganesha's next start)", s, root, s)
			}
		}
	}
	dir := r.String("tickle_dir")
	if dir == "" || root == "" || !ip.IsValid() {
		return sendGrace(r, ganesha.TakeIP, stopped, true)
	}
	mine, others := addressClients(r, dir, ip)
	names := stopped
	if set := takeoverSet(r, ip, stopped, mine, others); set != "" {
		names = []string{set}
	}
	if err := sendGrace(r, ganesha.TakeIP, names, true); err != nil {
		return err
	}
	forgetMoved(r, ip, stopped, mine, others)
	return nil
}

// takeoverSet gathers the stopped nodes' client records that the takeover
// of ip loads (ganesha.TakeoverSet), leaving out the clients that, by
// tickle_dir's lists, were connected to another address (others) and not
// to ip (mine): they reclaim where that address went, and loaded here they
// would hold this node's grace to its end (with NFSv4 only, where it ends
// once every loaded client has reclaimed). It returns the set's name for
// grace "5:NAME", or "" to load the nodes' whole records (the set could
// not be made: logged).
func takeoverSet(r *ocf.Request, ip netip.Addr, stopped []string, mine, others map[netip.Addr]bool) string {
	skip := map[netip.Addr]bool{}
	for c := range others {
		if !mine[c] {
			skip[c] = true
		}
	}
	name := ganesha.TakeoverSetName(ip)
	linked, skipped, err := ganesha.TakeoverSet(r.String("recovery_root"), name, stopped, skip)
	if err != nil {
		r.Log.Warnf("loading all the client records of %s: %v", strings.Join(stopped, ", "), err)
		return ""
	}
	r.Log.Infof("taking over %d client records of %s for %s (%d left out: clients of other addresses)",
		linked, strings.Join(stopped, ", "), ip, skipped)
	return name
}

// addressClients reads tickle_dir's lists: the clients connected to ip
// (none without a list; one that cannot be read is logged) and those
// connected to any other address.
func addressClients(r *ocf.Request, dir string, ip netip.Addr) (mine, others map[netip.Addr]bool) {
	mine, others = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	conns, err := tickle.ReadFile(dir, ip, r.Log)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Log.Warnf("the clients of %s are not known: %v", ip, err)
	}
	for _, c := range conns {
		mine[c.Remote.Addr().Unmap()] = true
	}
	own := filepath.Base(tickle.Path(dir, ip))
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if e.Name() == own || !strings.HasSuffix(e.Name(), ".tickle") {
			continue
		}
		other, err := tickle.ReadFile(dir, otherAddr(e.Name()), r.Log)
		if err != nil {
			continue
		}
		for _, c := range other {
			others[c.Remote.Addr().Unmap()] = true
		}
	}
	return mine, others
}

// forgetMoved removes, once they are loaded here, the records of the
// clients that came with ip from the stopped nodes' v4recov: they are this
// node's now (it records them when they reclaim). Left there, they would
// be loaded again when that node restarts or is taken over, and clients
// that are not there to reclaim hold its grace (to its end with NFSv4
// only, where it ends early once every loaded client has reclaimed). The
// clients are those connected to ip (mine), as its IPaddr3 recorded them
// in tickle_dir; one also connected to another address (others) is left,
// as it may reclaim there. Failures are logged.
func forgetMoved(r *ocf.Request, ip netip.Addr, stopped []string, mine, others map[netip.Addr]bool) {
	root, me := r.String("recovery_root"), nodeName(r)
	moved := map[netip.Addr]bool{}
	for c := range mine {
		if !others[c] {
			moved[c] = true
		}
	}
	if len(moved) == 0 {
		return
	}
	for _, s := range stopped {
		if s == me {
			continue
		}
		n, err := ganesha.Forget(filepath.Join(root, s), moved)
		if err != nil {
			r.Log.Warnf("client records of %s in %s: %v", ip, s, err)
		}
		if n > 0 {
			r.Log.Infof("%d client records of %s taken from %s's records", n, ip, s)
		}
	}
}

// otherAddr is the address a tickle file is named after (the zero Addr,
// which tickle.ReadFile refuses, when it names none).
func otherAddr(file string) netip.Addr {
	name := strings.TrimSuffix(file, ".tickle")
	a, err := netip.ParseAddr(name)
	if err != nil {
		a, _ = netip.ParseAddr(strings.ReplaceAll(name, "_", ":"))
	}
	return a
}

// triggerPrevious is the previous owner the start of this instance found.
func triggerPrevious(r *ocf.Request) string { return triggerStateValue(r, "previous") }

// triggerTaken is the node whose clients the start of this instance took
// over ("" for none).
func triggerTaken(r *ocf.Request) string { return triggerStateValue(r, "taken") }

func triggerStateValue(r *ocf.Request, key string) string {
	b, err := os.ReadFile(triggerState(r))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// triggerResource is the resource's name without the clone instance number.
func triggerResource(r *ocf.Request) string {
	rsc, _, _ := strings.Cut(r.Instance, ":")
	return rsc
}

// ownerTimeout bounds each CIB access of start.
const ownerTimeout = 5 * time.Second

// ownerStore keeps, cluster-wide, which node last started a trigger: each
// start records a sequence number one above the highest recorded.
type ownerStore interface {
	Latest(ctx context.Context, rsc string) (node string, seq int64, err error)
	Record(ctx context.Context, rsc, node string, seq int64) error
}

// cibOwners keeps the owner as a permanent node attribute,
// storhaug-owner-<resource> = the sequence number of the node's last start
// (a counter rather than a time: nodes' clocks may differ).
type cibOwners struct{}

func ownerAttr(rsc string) string { return "storhaug-owner-" + rsc }

func (cibOwners) Latest(ctx context.Context, rsc string) (string, int64, error) {
	nodes, err := pacemaker.NodeAttrs(ctx, pacemaker.Exec{})
	if err != nil {
		return "", 0, err
	}
	node, seq := latestOwner(nodes, ownerAttr(rsc))
	return node, seq, nil
}

func (cibOwners) Record(ctx context.Context, rsc, node string, seq int64) error {
	return pacemaker.SetNodeAttr(ctx, pacemaker.Exec{}, node, ownerAttr(rsc), strconv.FormatInt(seq, 10))
}

// sharedOwners keeps the owner in a file on the shared storage, next to
// the nodes' state directories (dir): storhaug-owner-<resource> holds
// "NODE SEQUENCE". Unlike a node attribute, writing it changes nothing in
// the CIB: a configuration change aborts the transition under way, and the
// VIP, which starts after this trigger in that transition, waited for the
// in-flight actions and a new transition (0.33 s in the failover bench).
// Without the file (the first start, or a cluster upgraded from the node
// attribute) the owner recorded in the CIB is read.
type sharedOwners struct {
	dir string
	cib ownerStore
}

// file is the record of rsc (storhaug teardown removes them:
// setup.OwnerRecordGlob).
func (o sharedOwners) file(rsc string) string { return filepath.Join(o.dir, ownerAttr(rsc)) }

func (o sharedOwners) Latest(ctx context.Context, rsc string) (string, int64, error) {
	b, err := os.ReadFile(o.file(rsc))
	if errors.Is(err, os.ErrNotExist) {
		return o.cib.Latest(ctx, rsc)
	}
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return "", 0, fmt.Errorf("%s: %q is not \"NODE SEQUENCE\"", o.file(rsc), b)
	}
	seq, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", o.file(rsc), err)
	}
	return f[0], seq, nil
}

func (o sharedOwners) Record(ctx context.Context, rsc, node string, seq int64) error {
	return atomicfile.Write(o.file(rsc), []byte(node+" "+strconv.FormatInt(seq, 10)+"\n"), 0o644)
}

// latestOwner finds, among the nodes' permanent attributes, the node
// whose attribute attr holds the highest sequence number, and that number
// (0 for none).
func latestOwner(nodes map[string]map[string]string, attr string) (string, int64) {
	best, bestT := "", int64(0)
	for name, attrs := range nodes {
		t, err := strconv.ParseInt(attrs[attr], 10, 64)
		if err == nil && (t > bestT || t == bestT && t > 0 && name < best) {
			best, bestT = name, t
		}
	}
	return best, bestT
}

// triggerStop gives the address's clients up, when this instance was
// started here: the stop runs only when the address really leaves this
// node (a move, a standby, a restart in place), after the VIP's stop. A
// pre-stop notification can be followed by no stop at all (Pacemaker
// aborts the transition, as when a failed monitor's cleanup comes in, and
// the next one leaves the instance where it is): a release sent there
// would leave the clients released on the node that still has their
// address, and taken over by nobody.
func triggerStop(r *ocf.Request) error {
	ip, err := triggerIP(r)
	if err != nil {
		return err
	}
	if _, err := os.Stat(triggerState(r)); err == nil {
		if err := releaseAddress(r, ip); err != nil {
			return err
		}
	}
	if err := os.Remove(triggerState(r)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return ocf.Errorf(ocf.ErrGeneric, "cannot record the stop: %w", err)
	}
	return nil
}

// releaseAddress has the local ganesha release the clients of ip, once
// their NFSv3 clients are kept for the node that takes ip over (ganesha's
// release unmonitors them: the monitor list is empty afterwards).
func releaseAddress(r *ocf.Request, ip netip.Addr) error {
	// ganesha releases by address, whatever names the takeover: a node
	// name matches no client (release "2:<node>" released nothing)
	if !ip.IsValid() {
		r.Log.Warnf("parameter ip is not set: the clients of this node's address cannot be released (ganesha releases clients by address)")
		return nil
	}
	keepReleased(r, ip)
	return sendGrace(r, ganesha.ReleaseIP, append(releaseNames(r, ip), movedOwners(r, ip)...), false)
}

// movedOwners are the owner strings of this node's NFSv4 clients that
// were connected to ip (in the list of the address's connections its
// IPaddr3 recorded in tickle_dir at its stop) and that a release of the
// address does not match (NFSv4.1 and later: the owner string names no
// server address). Failures are logged: the release by address is sent
// anyway.
func movedOwners(r *ocf.Request, ip netip.Addr) []string {
	dir, root := r.String("tickle_dir"), r.String("recovery_root")
	if dir == "" || root == "" {
		return nil
	}
	conns, err := tickle.ReadFile(dir, ip, r.Log)
	if err != nil {
		r.Log.Warnf("the NFSv4.1+ clients of %s are left to their lease here: %v", ip, err)
		return nil
	}
	peers := map[netip.Addr]bool{}
	for _, c := range conns {
		peers[c.Remote.Addr().Unmap()] = true
	}
	recs, err := ganesha.Records(root)
	if err != nil {
		r.Log.Warnf("client records of %s: %v", root, err)
	}
	var owners []string
	for _, rec := range recs {
		if peers[rec.Client] && !strings.Contains(rec.Owner, ip.String()) && !slices.Contains(owners, rec.Owner) {
			owners = append(owners, rec.Owner)
		}
	}
	return owners
}

func triggerMonitor(r *ocf.Request) error {
	if _, err := os.Stat(triggerState(r)); err != nil {
		return ocf.Exit(ocf.NotRunning)
	}
	return nil
}

func triggerNotify(r *ocf.Request) error {
	ip, err := triggerIP(r)
	if err != nil {
		return err
	}
	n := r.Notify()
	me := nodeName(r)
	byIP := r.String("name_form") == "ip"
	switch n.Type + "-" + n.Operation {
	case "post-start":
		// Only the instance that has just started takes over.
		if r.NodeName() != "" && len(n.Start) > 0 && !slices.Contains(n.Start, me) {
			return nil
		}
		var stopped []string
		for _, s := range n.Stop {
			if s != me && !slices.Contains(stopped, s) {
				stopped = append(stopped, s)
			}
		}
		if len(stopped) == 0 && slices.Contains(n.Stop, me) && slices.Contains(n.Start, me) {
			// Restarted here (ganesha restarted in place, or the address):
			// the stop released this node's clients of the address, and
			// a restarted ganesha has forgotten its NFSv3 clients' monitors.
			// Take them back: grace, and SM_NOTIFY so that they reclaim.
			r.Log.Infof("restarted on %s: taking back the clients released at the stop", me)
			stopped = append(stopped, me)
		}
		if len(stopped) == 0 {
			// a node lost without fencing is not reported stopped
			if prev := triggerPrevious(r); prev != "" && prev != me && slices.Contains(n.Start, me) {
				r.Log.Infof("no node reported stopped; %s had the address before", prev)
				stopped = append(stopped, prev)
			}
		}
		if taken := triggerTaken(r); taken != "" {
			// start took these clients over already, before the address
			stopped = slices.DeleteFunc(stopped, func(s string) bool { return s == taken })
			if len(stopped) == 0 {
				r.Log.Infof("%s's clients were taken over at start", taken)
				return nil
			}
			if byIP {
				return nil // one grace for the address, sent at start
			}
		}
		if len(stopped) == 0 {
			r.Log.Infof("started with no node stopped: no clients to take over")
			return nil
		}
		if err := takeOver(r, ip, stopped); err != nil {
			return err
		}
		startNSM(r, ip, stopped)
		return nil
	case "pre-stop":
		// Nothing: the release is the stop's (the address may yet stay).
	}
	return nil
}

// releaseNames is the address once per release request needed: ganesha
// expires one matching client per request.
func releaseNames(r *ocf.Request, ip netip.Addr) []string {
	k := 1
	if root := r.String("recovery_root"); root != "" {
		var err error
		if k, err = ganesha.ReleaseCount(root, ip.String()); err != nil {
			r.Log.Warnf("cannot count the client records of %s: %v (one release request)", ip, err)
		}
	}
	names := make([]string, k)
	for i := range names {
		names[i] = ip.String()
	}
	return names
}

// nsmTimeout bounds the SM_NOTIFY calls of a takeover (within the
// operation's deadline): a client that does not answer must not hold up
// the transition longer.
const nsmTimeout = 10 * time.Second

// nsmPortmapPort is the clients' portmapper port (0: 111); tests change it.
var nsmPortmapPort uint16

// notifyNSM tells the NFSv3 clients of the stopped nodes, once ganesha is
// in grace here, that the server at ip restarted: each client's statd then
// has its lockd reclaim the locks it held through ip. The clients are the
// stopped nodes' statd monitor lists on the shared state (the directory
// <recovery_root>/<node> leads to is in that node's /var/lib/nfs, which
// holds statd's sm, or statd/sm in the layout's own statd directory). The
// calls go out from ip, which is up here, with ip as the server's name (the
// clients monitor the address they mounted). The NSM state number is kept
// next to the nodes' directories, one per address. Failures are logged:
// the takeover itself has happened.
func notifyNSM(r *ocf.Request, ip netip.Addr, stopped []string) {
	root := r.String("recovery_root")
	if root == "" {
		return
	}
	if !ip.IsValid() {
		r.Log.Warnf("parameter ip is not set: the NFSv3 clients of %s are not notified (SM_NOTIFY names the address)", strings.Join(stopped, ", "))
		return
	}
	var clients, nodeDirs, keptIn []string
	var myDir string
	base := sharedBase(root)
	// this node too: what it released (the address left and came back
	// before the one that had it in between could notify: ganesha
	// restarted here; its start unmonitored them)
	me := nodeName(r)
	nodes := stopped
	if !slices.Contains(stopped, me) {
		nodes = append(slices.Clone(stopped), me)
	}
	for _, s := range nodes {
		cs, nodeDir, err := nodeMonitors(root, s, s == me)
		if err != nil && slices.Contains(stopped, s) {
			r.Log.Warnf("NFSv3 clients of %s: %v", s, err)
		}
		if nodeDir == "" {
			continue
		}
		if s != me {
			base = filepath.Dir(nodeDir)
		} else {
			myDir = nodeDir
		}
		if slices.Contains(stopped, s) {
			clients = append(clients, cs...)
		}
		nodeDirs = append(nodeDirs, nodeDir)
	}
	// and every other node's: the address may have passed through a node
	// that never had it up (a transition aborted after its takeover), so
	// the node that released the clients is not always the one stopped
	// now; the list follows the address until someone notifies it
	if base != "" {
		es, _ := os.ReadDir(base)
		for _, e := range es {
			if d := filepath.Join(base, e.Name()); e.IsDir() && !slices.ContainsFunc(nodeDirs, func(n string) bool { return sameDir(n, d) }) {
				nodeDirs = append(nodeDirs, d)
			}
		}
	}
	for _, d := range nodeDirs {
		kept, err := releasedClients(d, ip)
		if err != nil {
			r.Log.Warnf("NFSv3 clients of %s released in %s: %v", ip, d, err)
		}
		if len(kept) > 0 {
			clients = append(clients, kept...)
			keptIn = append(keptIn, d)
		}
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	if len(clients) == 0 {
		r.Log.Infof("no NFSv3 client of %s to notify", strings.Join(stopped, ", "))
		return
	}
	if base == "" {
		r.Log.Warnf("NFSv3 clients not notified: no link to another node's state directory in %s (the NSM state is kept beside them)", root)
		return
	}
	state, err := nsm.NextState(filepath.Join(base, "nsm-state-"+ip.String()))
	if err != nil {
		r.Log.Warnf("NFSv3 clients not notified: NSM state of %s: %v", ip, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), nsmTimeout)
	defer cancel()
	t0 := time.Now()
	n := &nsm.Notifier{Source: ip, MonName: ip.String(), State: state, PortmapPort: nsmPortmapPort}
	var answered []string
	for _, res := range n.NotifyAll(ctx, clients) {
		if res.Err != nil {
			r.Log.Warnf("SM_NOTIFY %s state %d to %s: %v", ip, state, res.Client, res.Err)
		} else {
			r.Log.Infof("SM_NOTIFY %s state %d to %s (%s) answered", ip, state, res.Client, res.Addr)
			answered = append(answered, res.Client)
		}
	}
	r.Log.Infof("NFSv3 clients of %s notified in %v", ip, time.Since(t0).Round(time.Millisecond))
	for _, d := range keptIn {
		if err := os.Remove(releasedFile(d, ip)); err != nil {
			r.Log.Warnf("%v", err)
		}
	}
	keepNotified(r, myDir, ip, answered)
}

// graceRetry is how long a takeover waits for ganesha to appear on D-Bus.
const graceRetry = 10 * time.Second

// sendGrace sends one grace request per name to the local ganesha. ganesha
// not running is a failure for a takeover (must), but not for a release:
// a stopped ganesha holds no clients to release.
func sendGrace(r *ocf.Request, ev ganesha.Event, names []string, must bool) error {
	ctx := r.Context()
	bus, err := ganesha.Connect(ctx, r.String("dbus_address"))
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "grace %d for %s not sent: %w", int(ev), strings.Join(names, ", "), err)
	}
	defer bus.Close()
	for _, name := range names {
		t0 := time.Now()
		err := bus.Grace(ctx, ev, name)
		// ganesha may be restarting: try again for a while (bounded by the
		// operation's deadline too)
		retryEnd := t0.Add(graceRetry)
		for errors.Is(err, ganesha.ErrNotRunning) && must && ctx.Err() == nil && time.Now().Before(retryEnd) {
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
				err = bus.Grace(ctx, ev, name)
			}
		}
		var refused *ganesha.RefusedError
		switch {
		case err == nil:
			r.Log.Infof("grace \"%d:%s\" accepted by ganesha in %v", int(ev), name, time.Since(t0).Round(time.Millisecond))
		case errors.Is(err, ganesha.ErrNotRunning) && !must:
			r.Log.Warnf("grace \"%d:%s\" not sent: %v (nothing to release)", int(ev), name, err)
		case errors.As(err, &refused):
			return ocf.Errorf(ocf.ErrGeneric, "%w", refused)
		case errors.Is(err, ganesha.ErrNotRunning):
			return ocf.Errorf(ocf.ErrGeneric, "cannot take over %s's clients: %w", name, err)
		default:
			return ocf.Errorf(ocf.ErrGeneric, "grace %s: %w", fmt.Sprintf("\"%d:%s\"", int(ev), name), err)
		}
	}
	return nil
}
