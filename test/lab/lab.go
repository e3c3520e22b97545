// Package lab runs a real storage cluster on one machine, for end-to-end
// tests and the demo: N nodes, each its own network, mount, UTS, IPC and PID
// namespace with private configuration and state (/etc through an overlay,
// /var/lib/{pacemaker,corosync,ctdb,samba}, /var/log, tmpfs /run, /tmp and
// /dev/shm), joined by a bridge that lives in a namespace of its own; client
// namespaces on the same bridge; and a directory every node sees at the same
// path (shared storage: the CTDB cluster lock, NFS state, tickle lists).
//
// On the nodes it runs the real daemons: corosync and pacemakerd, ctdbd,
// smbd, a private system D-Bus and ganesha.nfsd, each optional, each either
// started by the lab or only prepared (configured) so that a resource agent
// under Pacemaker can start it. A storhaug binary given in Options is the
// OCF provider "storhaug" inside every node, through private mounts: the
// host's /usr/lib/ocf is never written.
//
// Every name the lab makes derives from its prefix (Options.Prefix), so that
// several labs can run at once; Up first sweeps what a lab of the same
// prefix left behind, and Down removes everything. Only processes the lab
// started are ever signalled, by pid. It needs root.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode says what the lab does with a service.
type Mode int

const (
	Off      Mode = iota // not configured, not started
	Prepared             // configuration, directories written; not started
	Started              // prepared and started by the lab (and after Recover)
)

func (m Mode) String() string {
	switch m {
	case Prepared:
		return "prepared"
	case Started:
		return "started"
	}
	return "off"
}

// Options chooses the lab's size and services. The zero value is a 3-node
// lab with one client and no services at all.
type Options struct {
	// Prefix names everything the lab makes (default $STORHAUG_LAB_PREFIX,
	// else "shlab"): lowercase letters and digits, at most 10 characters.
	Prefix  string
	Nodes   int // default 3 (at most 9)
	Clients int // default 1 (at most 9)

	// KernelClients is the number of kernel clients (user-mode-linux
	// guests k1.., 198.51.100.151..; at most 9), booted at Up. They need
	// a client namespace (c1) to be reached from. Setting it turns NFSv3 on,
	// unless NFSv4Only.
	KernelClients int

	// NFSv4Only: ganesha serves NFSv4 only (NLM off: grace after a
	// failover ends once the clients have reclaimed), also with kernel
	// clients.
	NFSv4Only bool

	// NFSv3: ganesha serves NFSv3 too (Protocols 3, 4; NLM on), and every
	// node runs rpcbind and rpc.statd (started with the node, before
	// ganesha). NLM keeps ganesha in grace for its whole Grace_Period.
	NFSv3 bool

	// Storhaug is the path of a storhaug .deb (make deb) or of a built
	// storhaug binary; "" installs none. The package's files (extracted
	// with dpkg-deb), or the binary and one link per agent, appear inside
	// every node as /usr/sbin/storhaug and /usr/lib/ocf/resource.d/storhaug/<agent>.
	Storhaug string

	Pacemaker Mode // corosync + pacemakerd
	CTDB      Mode // ctdbd; cluster lock on the shared directory
	Samba     Mode // smbd, clustering = yes (Started needs CTDB Started)
	DBus      Mode // a private system bus per node
	Ganesha   Mode // ganesha.nfsd (Started needs DBus Started)

	// TokenMS is corosync's token timeout in ms (default 1000: shortened for
	// the lab so that a lost node is noticed in about a second).
	TokenMS int

	// Guard: sweep the lab when the process that called Up dies without
	// calling Down (a panic, a test timeout, SIGKILL). For tests; not for
	// a command that exits and leaves the lab running.
	Guard bool

	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any) `json:"-"`
}

// Subnets and addresses of the lab network: clients, node addresses and
// VIPs on Net4/Net6 (eth0, bridge br0); the cluster's own network
// (corosync) on ClusterNet4 (eth1 of each node, bridge br1).
const (
	Net4        = "198.51.100.0/24"
	Net6        = "2001:db8::/64"
	ClusterNet4 = "203.0.113.0/24"
	baseDir     = "/var/tmp/storhaug-lab"
	stateRel    = "state.json"
)

// NodeAddr4 is node i's (1-based) IPv4 address: 198.51.100.1i.
func NodeAddr4(i int) string { return fmt.Sprintf("198.51.100.%d", 10+i) }

// NodeAddr6 is node i's IPv6 address: 2001:db8::1i.
func NodeAddr6(i int) string { return fmt.Sprintf("2001:db8::%d", 10+i) }

// ClusterAddr4 is node i's address on the cluster network: 203.0.113.1i.
func ClusterAddr4(i int) string { return fmt.Sprintf("203.0.113.%d", 10+i) }

// ClientAddr4 is client i's (1-based) IPv4 address: 198.51.100.10i.
func ClientAddr4(i int) string { return fmt.Sprintf("198.51.100.%d", 100+i) }

// ClientAddr6 is client i's IPv6 address: 2001:db8::10i.
func ClientAddr6(i int) string { return fmt.Sprintf("2001:db8::%d", 100+i) }

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// DefaultPrefix is $STORHAUG_LAB_PREFIX, or "shlab".
func DefaultPrefix() string {
	if p := os.Getenv("STORHAUG_LAB_PREFIX"); p != "" {
		return p
	}
	return "shlab"
}

// Root is the directory that holds everything of the lab with this prefix.
func Root(prefix string) string { return filepath.Join(baseDir, prefix) }

func (o *Options) normalize() error {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix()
	}
	if !prefixRE.MatchString(o.Prefix) {
		return fmt.Errorf("lab: prefix %q: want a lowercase letter then up to 9 lowercase letters or digits", o.Prefix)
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes < 1 || o.Nodes > 9 {
		return fmt.Errorf("lab: nodes %d: want 1..9", o.Nodes)
	}
	if o.Clients == 0 {
		o.Clients = 1
	}
	if o.Clients < 0 || o.Clients > 9 {
		return fmt.Errorf("lab: clients %d: want 0..9", o.Clients)
	}
	if o.KernelClients < 0 || o.KernelClients > 9 {
		return fmt.Errorf("lab: kernel clients %d: want 0..9", o.KernelClients)
	}
	if o.NFSv4Only && o.NFSv3 {
		return errors.New("lab: NFSv4Only and NFSv3 both set")
	}
	if o.KernelClients > 0 && !o.NFSv4Only {
		o.NFSv3 = true
	}
	if o.TokenMS == 0 {
		o.TokenMS = 1000
	}
	if o.Samba == Started && o.CTDB != Started {
		return errors.New("lab: Samba Started needs CTDB Started (smbd with clustering exits without ctdbd)")
	}
	if o.Ganesha == Started && o.DBus != Started {
		return errors.New("lab: Ganesha Started needs DBus Started (ganesha started before its D-Bus never registers)")
	}
	if o.Storhaug != "" {
		abs, err := filepath.Abs(o.Storhaug)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("lab: storhaug package or binary: %w", err)
		}
		o.Storhaug = abs
	}
	return nil
}

// Lab is a running lab.
type Lab struct {
	opts    Options
	root    string
	nodes   []*Node
	clients []*Client
	guests  []*Guest

	mu      sync.Mutex
	timings map[string]time.Duration
	parts   int      // bridges made by Partition
	pidns   []string // every PID namespace a node of this lab had
	down    bool
	guard   *guard

	fencedPid   int    // the fence daemon (see fence.go)
	fencedStart uint64 //
	fenced      bool   // this process is the fence daemon
}

// Prefix is the prefix every name of this lab derives from.
func (l *Lab) Prefix() string { return l.opts.Prefix }

// Options are the options the lab was brought up with (normalized).
func (l *Lab) Options() Options { return l.opts }

// Root is the lab's directory on the host (state, per-node dirs, logs).
func (l *Lab) Root() string { return l.root }

// SharedDir is the shared storage: the same directory, at the same path, on
// the host and in every node.
func (l *Lab) SharedDir() string { return filepath.Join(l.root, "shared") }

// Nodes are the lab's nodes, n1 first.
func (l *Lab) Nodes() []*Node { return append([]*Node(nil), l.nodes...) }

// Node returns the node with that name (n1, n2, ...), nil if there is none.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Clients are the lab's client namespaces, c1 first.
func (l *Lab) Clients() []*Client { return append([]*Client(nil), l.clients...) }

// Client returns client i, 1-based: Client(1) is c1 at 198.51.100.101.
func (l *Lab) Client(i int) *Client {
	if i < 1 || i > len(l.clients) {
		panic(fmt.Sprintf("lab: client %d: the lab has clients 1..%d", i, len(l.clients)))
	}
	return l.clients[i-1]
}

// Timings are the measured durations of bring-up steps ("nodes",
// "pacemaker-dc", "ctdb-healthy", "samba", "ganesha", "up") and of "down".
func (l *Lab) Timings() map[string]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]time.Duration, len(l.timings))
	for k, v := range l.timings {
		m[k] = v
	}
	return m
}

func (l *Lab) setTiming(k string, d time.Duration) {
	l.mu.Lock()
	l.timings[k] = d
	l.mu.Unlock()
}

// TimingsString formats Timings on one line, in a fixed order.
func (l *Lab) TimingsString() string {
	t := l.Timings()
	order := []string{"nodes", "pacemaker-dc", "ctdb-healthy", "samba", "ganesha", "up", "down"}
	var parts []string
	for _, k := range order {
		if d, ok := t[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.1fs", k, d.Seconds()))
			delete(t, k)
		}
	}
	rest := make([]string, 0, len(t))
	for k := range t {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s=%.1fs", k, t[k].Seconds()))
	}
	return strings.Join(parts, " ")
}

func (l *Lab) logf(format string, args ...any) {
	if l.opts.Logf != nil {
		l.opts.Logf("lab[%s]: "+format, append([]any{l.opts.Prefix}, args...)...)
	}
}

// nsName is the name of a namespace of this lab under /run/netns.
func nsName(prefix, what string) string { return prefix + "-" + what }

// Up brings a lab up: it sweeps the leftovers of a lab with the same prefix,
// makes the network, starts the nodes and the services Options asks for,
// and waits until they are ready (Pacemaker: a DC and every node online;
// CTDB: every node healthy; smbd and ganesha.nfsd: answering). On error
// everything made so far is torn down.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root")
	}
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	start := time.Now()
	l := &Lab{opts: opts, root: Root(opts.Prefix), timings: map[string]time.Duration{}}
	if err := Sweep(opts.Prefix); err != nil {
		return nil, err
	}
	if opts.Guard {
		g, err := startGuard(opts.Prefix)
		if err != nil {
			return nil, fmt.Errorf("lab: guard: %w", err)
		}
		l.guard = g
	}
	if err := l.build(ctx); err != nil {
		l.Down()
		return nil, err
	}
	l.setTiming("up", time.Since(start))
	l.logf("up in %.1fs (%s)", time.Since(start).Seconds(), l.TimingsString())
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	t0 := time.Now()
	if err := os.MkdirAll(l.root, 0o755); err != nil {
		return err
	}
	for i := 1; i <= l.opts.Nodes; i++ {
		l.nodes = append(l.nodes, &Node{lab: l, name: fmt.Sprintf("n%d", i), index: i,
			addr4: NodeAddr4(i), addr6: NodeAddr6(i)})
	}
	for i := 1; i <= l.opts.Clients; i++ {
		l.clients = append(l.clients, &Client{name: fmt.Sprintf("c%d", i), ns: nsName(l.opts.Prefix, fmt.Sprintf("c%d", i)),
			addr4: ClientAddr4(i), addr6: ClientAddr6(i)})
	}
	for i := 1; i <= l.opts.KernelClients; i++ {
		l.guests = append(l.guests, &Guest{lab: l, name: fmt.Sprintf("k%d", i), index: i,
			addr4: GuestAddr4(i), addr6: GuestAddr6(i)})
	}
	if err := l.saveState(); err != nil { // before anything exists: Sweep needs the root to know it is ours
		return err
	}
	if err := l.installStorhaug(); err != nil {
		return err
	}
	if err := l.makeNetwork(); err != nil {
		return err
	}
	if err := l.writeConfigs(); err != nil {
		return err
	}
	if l.opts.Pacemaker != Off {
		if err := l.installFence(); err != nil {
			return err
		}
		if err := l.startFenced(); err != nil {
			return err
		}
	}
	if err := l.prepareGuests(); err != nil {
		return err
	}
	for _, n := range l.nodes {
		if err := n.boot(); err != nil {
			return err
		}
	}
	if err := l.saveState(); err != nil {
		return err
	}
	l.setTiming("nodes", time.Since(t0))
	l.logf("%d nodes booted in %.1fs", len(l.nodes), time.Since(t0).Seconds())
	if err := l.startServices(ctx, l.nodes, t0); err != nil {
		return err
	}
	return l.bootGuests(ctx)
}

// bootGuests boots every kernel client, in parallel.
func (l *Lab) bootGuests(ctx context.Context) error {
	if len(l.guests) == 0 {
		return nil
	}
	t0 := time.Now()
	errs := make([]error, len(l.guests))
	var wg sync.WaitGroup
	for i, g := range l.guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Boot(ctx)
		}()
	}
	wg.Wait()
	l.setTiming("guests", time.Since(t0))
	return errors.Join(errs...)
}

// Down stops everything the lab started and removes everything it made:
// nodes (their whole PID namespaces die at once), namespaces, the lab's
// directory. It is safe to call more than once and on a partly built lab.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	l.mu.Unlock()
	t0 := time.Now()
	l.guard.release()
	if dir := os.Getenv(KeepLogsEnv); dir != "" {
		if err := l.keepLogs(dir); err != nil {
			l.logf("keeping the logs in %s: %v", dir, err)
		}
	}
	err := Sweep(l.opts.Prefix)
	l.setTiming("down", time.Since(t0))
	l.logf("down in %.1fs", time.Since(t0).Seconds())
	return err
}

// state is what a lab records in its root, for Attach and Sweep.
type state struct {
	Prefix  string
	Options Options
	Nodes   []nodeState
	Clients []string
	Guests  []nodeState
	Parts   int
	// The fence daemon (pid and start time).
	FencedPid   int    `json:",omitempty"`
	FencedStart uint64 `json:",omitempty"`
}

type nodeState struct {
	Name  string
	Pid   int    // host pid of the node's init (PID 1 inside)
	Start uint64 // its start time, so that a reused pid is never signalled
}

// saveState records the lab's state. Two processes write it (the one that
// brought the lab up and the fence daemon, which boots nodes): under a
// lock, each writes the nodes as it sees them (a node another process
// booted is taken from the file, see Node.initPid) and keeps what it does
// not own.
func (l *Lab) saveState() error {
	unlock, err := lockPath(filepath.Join(l.root, "state.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	nodes := make([]nodeState, 0, len(l.nodes))
	for _, n := range l.nodes {
		pid, start := n.initPid()
		nodes = append(nodes, nodeState{Name: n.name, Pid: pid, Start: start})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := state{Prefix: l.opts.Prefix, Options: l.opts, Parts: l.parts}
	if old, err := readState(l.opts.Prefix); err == nil {
		st.FencedPid, st.FencedStart = old.FencedPid, old.FencedStart
		if l.fenced {
			st = *old
		}
	}
	if l.fencedPid != 0 {
		st.FencedPid, st.FencedStart = l.fencedPid, l.fencedStart
	}
	st.Options.Logf = nil
	st.Nodes = nodes
	if !l.fenced {
		st.Clients = nil
		for _, c := range l.clients {
			st.Clients = append(st.Clients, c.name)
		}
	}
	if !l.fenced {
		st.Guests = nil
		for _, g := range l.guests {
			g.mu.Lock()
			st.Guests = append(st.Guests, nodeState{Name: g.name, Pid: g.pid, Start: g.start})
			g.mu.Unlock()
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(l.root, stateRel), b, 0o644)
}

// lockPath takes an exclusive flock on path (made if missing).
func lockPath(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func readState(prefix string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(Root(prefix), stateRel))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", filepath.Join(Root(prefix), stateRel), err)
	}
	return &st, nil
}

// Attach returns the running lab of that prefix (brought up by another
// process, e.g. `lab up`), from its recorded state. logf may be nil.
func Attach(prefix string, logf func(string, ...any)) (*Lab, error) {
	if prefix == "" {
		prefix = DefaultPrefix()
	}
	st, err := readState(prefix)
	if err != nil {
		return nil, fmt.Errorf("lab: no lab with prefix %q: %w", prefix, err)
	}
	opts := st.Options
	opts.Logf = logf
	l := &Lab{opts: opts, root: Root(prefix), timings: map[string]time.Duration{}, parts: st.Parts,
		fencedPid: st.FencedPid, fencedStart: st.FencedStart}
	for i, ns := range st.Nodes {
		n := &Node{lab: l, name: ns.Name, index: i + 1, addr4: NodeAddr4(i + 1), addr6: NodeAddr6(i + 1)}
		n.pid, n.start = ns.Pid, ns.Start
		l.nodes = append(l.nodes, n)
	}
	for i, c := range st.Clients {
		l.clients = append(l.clients, &Client{name: c, ns: nsName(prefix, c), addr4: ClientAddr4(i + 1), addr6: ClientAddr6(i + 1)})
	}
	for i, gs := range st.Guests {
		g := &Guest{lab: l, name: gs.Name, index: i + 1, addr4: GuestAddr4(i + 1), addr6: GuestAddr6(i + 1)}
		g.pid, g.start = gs.Pid, gs.Start
		l.guests = append(l.guests, g)
	}
	return l, nil
}
