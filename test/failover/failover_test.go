// Package failover tests, in network namespaces and without Pacemaker, what
// the TCP clients of a virtual address see when it moves between nodes: the
// real storhaug binary run as IPaddr3 (start, monitor, stop, and the helper
// process start leaves), a real TCP service on the address, real clients.
//
// Nodes A and B and a client host C hang off one bridge. Each node is a
// network namespace with its own HA_RSCTMP; tickle_dir is a directory both
// share, as a cluster file system would be.
package failover

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/tickle"
)

func TestMain(m *testing.M) { ocftest.Main(m) }

// clientsPerVIP is K: STORHAUG_TICKLE_K, else 50.
func clientsPerVIP() int {
	if k, err := strconv.Atoi(os.Getenv("STORHAUG_TICKLE_K")); err == nil && k > 1 {
		return k
	}
	return 50
}

// vipRes is one IPaddr3 resource and the service on its address.
type vipRes struct {
	addr   netip.Addr
	prefix int
	port   int
}

func (v vipRes) hostPort() string { return net.JoinHostPort(v.addr.String(), strconv.Itoa(v.port)) }

var (
	res4 = vipRes{netip.MustParseAddr("198.51.100.10"), 24, 4445}
	res6 = vipRes{netip.MustParseAddr("2001:db8::10"), 64, 4446}
)

type cluster struct {
	t         *testing.T
	agent     string
	tickleDir string
	a, b, c   *node
}

type node struct {
	cl      *cluster
	name    string
	h       *nstest.Host
	rsctmp  string
	service map[netip.Addr]*service
}

func newCluster(t *testing.T) *cluster {
	nstest.Skip(t)
	bin := ocftest.Binary(t)
	root := ocftest.Install(t, bin)
	n := nstest.New(t)
	cl := &cluster{t: t, agent: ocftest.AgentPath(root, "IPaddr3"), tickleDir: filepath.Join(t.TempDir(), "shared", "tickle")}
	mk := func(name string, h *nstest.Host) *node {
		return &node{cl: cl, name: name, h: h, rsctmp: t.TempDir(), service: map[netip.Addr]*service{}}
	}
	cl.a = mk("A", n.AddHost("198.51.100.1/24", "2001:db8::1/64"))
	cl.b = mk("B", n.AddHost("198.51.100.2/24", "2001:db8::2/64"))
	cl.c = mk("C", n.AddHost("198.51.100.3/24", "2001:db8::3/64"))
	return cl
}

// run runs IPaddr3 action for v on the node and returns the exit code.
func (nd *node) run(action string, v vipRes, extra ...string) (int, string) {
	cmd := exec.Command(nd.cl.agent, action)
	cmd.Env = append(os.Environ(),
		"OCF_ROOT=/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE=vip"+strings.NewReplacer(".", "-", ":", "-").Replace(v.addr.String()),
		"OCF_RESKEY_CRM_meta_timeout=20000",
		"HA_RSCTMP="+nd.rsctmp,
		"HA_LOGFACILITY=none",
		"OCF_RESKEY_ip="+v.addr.String(),
		"OCF_RESKEY_cidr_netmask="+strconv.Itoa(v.prefix),
		"OCF_RESKEY_nic=eth0",
		"OCF_RESKEY_network_namespace="+nd.h.Name,
		"OCF_RESKEY_tickle_dir="+nd.cl.tickleDir,
	)
	cmd.Env = append(cmd.Env, extra...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		nd.cl.t.Fatalf("%s: IPaddr3 %s: %v", nd.name, action, err)
	}
	return code, string(out)
}

func (nd *node) mustRun(action string, v vipRes, extra ...string) time.Duration {
	t := nd.cl.t
	t.Helper()
	start := time.Now()
	code, out := nd.run(action, v, extra...)
	if code != 0 {
		t.Fatalf("%s: IPaddr3 %s %s: exit %d\n%s", nd.name, action, v.addr, code, out)
	}
	return time.Since(start)
}

// startVIP starts the address on the node and stops it when the test ends.
func (nd *node) startVIP(v vipRes, extra ...string) (took time.Duration) {
	took = nd.mustRun("start", v, extra...)
	nd.cl.t.Cleanup(func() { nd.run("stop", v, extra...) })
	return took
}

// keeperPid is the pid of the helper process IPaddr3 start left on the node.
func (nd *node) keeperPid(v vipRes) int {
	matches, _ := filepath.Glob(filepath.Join(nd.rsctmp, "storhaug-IPaddr3-*.pid"))
	for _, m := range matches {
		if !strings.Contains(m, strings.NewReplacer(".", "-", ":", "-").Replace(v.addr.String())) {
			continue
		}
		b, _ := os.ReadFile(m)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	return 0
}

// crash makes the node silent: its helper processes die (SIGKILL, by the
// pid IPaddr3 recorded for the process it started for this test) and its
// link goes down, as when a node loses power.
func (nd *node) crash(vs ...vipRes) {
	t := nd.cl.t
	for _, v := range vs {
		if pid := nd.keeperPid(v); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		} else {
			t.Errorf("%s: no helper process for %s", nd.name, v.addr)
		}
	}
	err := nd.h.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// service is a TCP server on a VIP that greets each client with its node's
// name and then keeps the connection open, reading.
type service struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (nd *node) serve(v vipRes) *service {
	t := nd.cl.t
	t.Helper()
	s := &service{}
	addr := v.hostPort()
	if v.addr.Is4() {
		addr = ":" + strconv.Itoa(v.port) // dual-stack: its IPv4 clients are ::ffff:a.b.c.d sockets
	}
	err := nd.h.Do(func() (err error) { s.ln, err = net.Listen("tcp", addr); return })
	if err != nil {
		t.Fatalf("%s: service on %s: %v", nd.name, addr, err)
	}
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				io.WriteString(c, nd.name+"\n")
				io.Copy(io.Discard, c)
			}()
		}
	}()
	nd.service[v.addr] = s
	t.Cleanup(s.stop)
	return s
}

func (s *service) stop() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// client is one TCP client on C.
type client struct {
	v       vipRes
	conn    net.Conn
	ended   chan error // the first read error after the greeting
	endedAt time.Time
}

func (cl *cluster) connect(v vipRes, k int, want string) []*client {
	t := cl.t
	t.Helper()
	var cs []*client
	for range k {
		c := &client{v: v, ended: make(chan error, 1)}
		if got, err := c.dial(cl.c, time.Now().Add(3*time.Second)); err != nil || got != want {
			t.Fatalf("client of %s: greeted by %q (%v), want %q", v.addr, got, err, want)
		}
		t.Cleanup(func() { c.conn.Close() })
		go func() {
			_, err := c.conn.Read(make([]byte, 1))
			c.endedAt = time.Now()
			c.ended <- err
		}()
		cs = append(cs, c)
	}
	return cs
}

// dial connects (retrying until deadline: the service may not be up yet)
// and returns the greeting.
func (c *client) dial(h *node, deadline time.Time) (string, error) {
	for {
		var conn net.Conn
		err := h.h.Do(func() (err error) {
			// No keepalive probes (Go's default is 15 s): only a tickle may
			// reset a client here, as with most clients (2 h).
			conn, err = (&net.Dialer{Timeout: time.Second, KeepAlive: -1}).Dial("tcp", c.v.hostPort())
			return
		})
		if err == nil {
			conn.SetReadDeadline(deadline)
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.SetReadDeadline(time.Time{})
			if rerr == nil {
				c.conn = conn
				return strings.TrimSpace(line), nil
			}
			conn.Close()
			err = rerr
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRecorded waits until the shared list of v holds every client in cs
// and returns how long after the last client connected that was.
func (cl *cluster) waitRecorded(v vipRes, cs []*client, connected time.Time, within time.Duration) time.Duration {
	t := cl.t
	t.Helper()
	want := map[netip.AddrPort]bool{}
	for _, c := range cs {
		want[c.conn.LocalAddr().(*net.TCPAddr).AddrPort()] = true
	}
	deadline := time.Now().Add(within)
	for {
		conns, err := tickle.ReadFile(cl.tickleDir, v.addr, nil)
		found := 0
		for _, c := range conns {
			if want[netip.AddrPortFrom(c.Remote.Addr(), c.Remote.Port())] {
				found++
			}
		}
		if err == nil && found == len(want) {
			return time.Since(connected)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the list of %s holds %d of %d clients (%v)", within, v.addr, found, len(want), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReset waits up to within for each client's connection to end with
// ECONNRESET and returns when the last did.
func waitReset(t *testing.T, cs []*client, within time.Duration) time.Time {
	t.Helper()
	deadline := time.After(within)
	var last time.Time
	for i, c := range cs {
		select {
		case err := <-c.ended:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client %d of %s: connection ended with %v, want ECONNRESET", i, c.v.addr, err)
			}
			if c.endedAt.After(last) {
				last = c.endedAt
			}
		case <-deadline:
			t.Fatalf("client %d of %s (and maybe more) not reset within %v", i, c.v.addr, within)
		}
	}
	return last
}

// assertHanging checks that no client's connection has ended.
func assertHanging(t *testing.T, cs []*client) {
	t.Helper()
	ended := 0
	for _, c := range cs {
		select {
		case err := <-c.ended:
			ended++
			c.ended <- err
		default:
		}
	}
	if ended > 0 {
		t.Errorf("%d of %d clients were reset without tickles", ended, len(cs))
	}
}

// reconnect has every client connect again and checks that want answers.
func (cl *cluster) reconnect(cs []*client, want string) {
	t := cl.t
	t.Helper()
	for i, c := range cs {
		c.conn.Close()
		if got, err := c.dial(cl.c, time.Now().Add(5*time.Second)); err != nil || got != want {
			t.Fatalf("client %d of %s reconnected to %q (%v), want %q", i, c.v.addr, got, err, want)
		}
		c.conn.Close()
	}
}

func localSockets(t *testing.T, h *nstest.Host, v vipRes) []tickle.Conn {
	t.Helper()
	conns, err := tickle.List(tickle.Config{VIP: v.addr, Netns: h.Name, Source: tickle.SockDiag})
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

// crashScenario: the service and its two VIPs run on A; K clients per VIP,
// half connected before A's last monitor and half after; A crashes; the
// VIPs and the service start on B. It returns the clients and when B's
// first start began.
func crashScenario(t *testing.T, extraB ...string) (cl *cluster, clients map[vipRes][]*client, startB map[vipRes]time.Time) {
	clients, startB = map[vipRes][]*client{}, map[vipRes]time.Time{}
	cl = newCluster(t)
	k := clientsPerVIP()
	for _, v := range []vipRes{res4, res6} {
		cl.a.startVIP(v)
		cl.a.serve(v)
	}
	// The helper starts recording after the later announcement rounds.
	for _, v := range []vipRes{res4, res6} {
		cl.waitRecorded(v, nil, time.Now(), 10*time.Second)
	}
	for _, v := range []vipRes{res4, res6} {
		early := cl.connect(v, k/2, "A")
		if code, out := cl.a.run("monitor", v); code != 0 {
			t.Fatalf("A: monitor %s: %d\n%s", v.addr, code, out)
		}
		late := cl.connect(v, k-k/2, "A")
		stale := cl.waitRecorded(v, append(early, late...), time.Now(), 3*time.Second)
		t.Logf("%s: the %d clients connected after the last monitor were in the shared list %v later", v.addr, len(late), stale.Round(time.Millisecond))
		clients[v] = append(early, late...)
	}
	cl.a.crash(res4, res6)
	for _, v := range []vipRes{res4, res6} {
		startB[v] = time.Now()
		took := cl.b.startVIP(v, extraB...)
		t.Logf("B: IPaddr3 start %s took %v", v.addr, took.Round(time.Millisecond))
	}
	for _, v := range []vipRes{res4, res6} {
		cl.b.serve(v)
	}
	return cl, clients, startB
}

// A crashes; IPaddr3 and the service start on B: every client of both
// addresses (IPv4 through a dual-stack listener, IPv6), including those that
// connected after A's last monitor, is reset within 2 s and reconnects to B.
func TestCrashClientsResetAndReconnect(t *testing.T) {
	cl, clients, startB := crashScenario(t)
	for _, v := range []vipRes{res4, res6} {
		last := waitReset(t, clients[v], 2*time.Second)
		t.Logf("%s: all %d clients reset, the last %v after B's start of the address began",
			v.addr, len(clients[v]), last.Sub(startB[v]).Round(time.Millisecond))
	}
	for _, v := range []vipRes{res4, res6} {
		cl.reconnect(clients[v], "B")
	}
}

// Control: the same crash with tickle=false on B leaves the clients
// hanging, which is what makes the test above prove the feature.
func TestCrashWithoutTicklesClientsHang(t *testing.T) {
	_, clients, _ := crashScenario(t, "OCF_RESKEY_tickle=false")
	time.Sleep(3 * time.Second)
	for _, v := range []vipRes{res4, res6} {
		assertHanging(t, clients[v])
	}
}

// A graceful move: IPaddr3 stop on A removes the address, then destroys
// A's sockets on it (the service on A keeps running, as smbd does under
// CTDB). A reset from A while it still had the address would have the
// clients redial A; after the removal they cannot reach A (the kernel may
// still send the reset, from the removed address: here half the clients
// got one). B's start tickles them: every client is reset by then and
// reconnects to B.
func TestGracefulMove(t *testing.T) {
	cl := newCluster(t)
	k := clientsPerVIP()
	var clients []*client
	for _, v := range []vipRes{res4, res6} {
		cl.a.startVIP(v)
		cl.a.serve(v)
		clients = append(clients, cl.connect(v, k, "A")...)
	}
	for _, v := range []vipRes{res4, res6} {
		if got := localSockets(t, cl.a.h, v); len(got) != k {
			t.Fatalf("A has %d sockets on %s before stop, want %d", len(got), v.addr, k)
		}
		cl.a.mustRun("stop", v)
		if got := localSockets(t, cl.a.h, v); len(got) != 0 {
			t.Errorf("A still has %d sockets on %s after stop: %v", len(got), v.addr, got)
		}
		if recorded, err := tickle.ReadFile(cl.tickleDir, v.addr, nil); err != nil || len(recorded) != k {
			t.Errorf("stop recorded %d connections of %s (%v), want %d", len(recorded), v.addr, err, k)
		}
	}
	startB := time.Now()
	for _, v := range []vipRes{res4, res6} {
		cl.b.startVIP(v)
		cl.b.serve(v)
	}
	last := waitReset(t, clients, time.Second)
	t.Logf("%d clients reset (by A's destroyed sockets or B's tickles), the last %v after B's start began", len(clients), last.Sub(startB).Round(time.Millisecond))
	cl.reconnect(clients, "B")
}
