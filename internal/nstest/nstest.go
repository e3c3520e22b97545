// Package nstest builds small networks of namespaces for tests: a bridge in
// a namespace of its own and hosts attached to it by veth pairs, all named
// uniquely per test and removed when the test ends, also when it fails.
// It never touches the host's own interfaces. It needs root.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/nsnet"
)

// Net is a bridge with hosts on it.
type Net struct {
	t      testing.TB
	id     string
	bridge *Host // the namespace that holds the bridge "br0"
	hosts  int
}

// Host is one network namespace.
type Host struct {
	Name string // the namespace's name, under /run/netns
	Link string // the host's interface on the bridge ("eth0"), "" for the bridge namespace
	MAC  net.HardwareAddr
	ns   netns.NsHandle
}

// Skip ends the test unless it can make namespaces (it runs as root): a
// skip, or under CI=true a failure (package need).
func Skip(t testing.TB) {
	t.Helper()
	need.Root(t, "to make network namespaces")
}

// New makes an empty bridge, in a namespace of its own, for this test.
func New(t testing.TB) *Net {
	t.Helper()
	Skip(t)
	b := make([]byte, 3)
	rand.Read(b)
	n := &Net{t: t, id: hex.EncodeToString(b)}
	n.bridge = n.newNS("shb" + n.id)
	if err := nsnet.AddBridges(n.bridge.Name, "br0"); err != nil {
		t.Fatalf("nstest: bridge: %v", err)
	}
	return n
}

// newNS makes a named namespace and registers its removal.
func (n *Net) newNS(name string) *Host {
	n.t.Helper()
	if err := nsnet.NewNamed(name); err != nil {
		n.t.Fatalf("nstest: %v", err)
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		netns.DeleteNamed(name)
		n.t.Fatalf("nstest: namespace %s: %v", name, err)
	}
	n.t.Cleanup(func() {
		h.Close()
		netns.DeleteNamed(name)
	})
	return &Host{Name: name, ns: h}
}

// AddHost makes a namespace attached to the bridge through its interface
// "eth0", with the given addresses ("198.51.100.1/24", "2001:db8::1/64";
// IPv6 addresses are added without duplicate address detection), up.
func (n *Net) AddHost(addrs ...string) *Host {
	n.t.Helper()
	n.hosts++
	h := n.newNS(fmt.Sprintf("sh%s%d", n.id, n.hosts))
	v := nsnet.Veth{BridgeNS: n.bridge.Name, Bridge: "br0", Port: fmt.Sprintf("v%s%d", n.id, n.hosts), NS: h.Name, Name: "eth0", Addrs: addrs}
	mac, err := v.Add()
	if err != nil {
		n.t.Fatalf("nstest: host %s: %v", h.Name, err)
	}
	h.Link, h.MAC = "eth0", mac
	return h
}

// Do runs fn on an OS thread inside the host's namespace. Sockets fn opens
// stay in that namespace after fn returns.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked on purpose: when this goroutine ends, the
		// runtime retires the thread rather than reuse it in the wrong namespace.
		if err := netns.Set(h.ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Path is the namespace's file, for nsenter --net= or setns.
func (h *Host) Path() string { return "/run/netns/" + h.Name }

// Command returns a command that runs inside the host's namespace (the
// caller starts it, and ends it by its pid).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + h.Path(), "--", name}, args...)...)
}

// Run runs a command inside the host's namespace and returns its combined
// output, failing the test if it fails.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := h.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
