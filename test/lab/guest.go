package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// Kernel clients: a Guest is a user-mode-linux kernel (Debian's
// user-mode-linux, /usr/bin/linux.uml) running as a process on the host,
// booted with the host's file system as its root (hostfs, READ-ONLY), its
// network a tap device ("k1", ...) enslaved to the lab bridge, so that it
// mounts the lab's exports and shares with the kernel's own NFS and CIFS
// clients, exactly as a production client does.
//
// Its init is this very program again (copied into the lab), started by the
// guest kernel with guestEnv in its environment: it mounts tmpfs on /run,
// /tmp and /var/lib/nfs (statd's state, private to the guest), the guest's
// own directory of the lab (<root>/guests/kN, read-write: the only host path
// the guest can write) on /lab, gives the guest its own hostname and NFSv4
// client identity (nfs4_unique_id), loads nfs/nfsv3/nfsv4/cifs from the UML
// modules, starts rpcbind and rpc.statd, and runs an agent that executes
// commands for the host over TCP (port GuestAgentPort on the guest's
// address). The host talks to it from client c1's namespace.
//
// linux.uml is started as PID 1 of a PID namespace of its own: killing it
// (Down, Sweep, Guest.Kill) takes its helper processes with it.

const (
	guestEnv      = "STORHAUG_LAB_GUEST"
	guestAgentEnv = "STORHAUG_LAB_GUEST_AGENT"
	// GuestAgentPort is the TCP port of the agent in every guest.
	GuestAgentPort = 7070
	umlBinary      = "/usr/bin/linux.uml"
	umlModules     = "/usr/lib/uml/modules"
	// GuestMemMB is each guest's memory.
	GuestMemMB = 192
)

// GuestAddr4 is kernel client i's (1-based) IPv4 address: 198.51.100.15i.
func GuestAddr4(i int) string { return fmt.Sprintf("198.51.100.%d", 150+i) }

// GuestAddr6 is kernel client i's IPv6 address: 2001:db8::15i.
func GuestAddr6(i int) string { return fmt.Sprintf("2001:db8::%d", 150+i) }

// Guest is a kernel client: a user-mode-linux guest on the lab network.
type Guest struct {
	lab          *Lab
	name         string // "k1"
	index        int
	addr4, addr6 string

	mu     sync.Mutex
	pid    int
	start  uint64
	exited chan struct{}
	booted time.Duration
}

// Name is "k1", "k2", ...; the guest's hostname is <prefix>-k1.
func (g *Guest) Name() string { return g.name }

// Hostname is the guest's hostname (also its NFSv4 client identity).
func (g *Guest) Hostname() string { return g.lab.opts.Prefix + "-" + g.name }

// Addr4 is the guest's IPv4 address.
func (g *Guest) Addr4() string { return g.addr4 }

// Addr6 is the guest's IPv6 address.
func (g *Guest) Addr6() string { return g.addr6 }

// Dir is the guest's directory on the host, /lab inside the guest: the only
// host directory the guest can write.
func (g *Guest) Dir() string { return filepath.Join(g.lab.root, "guests", g.name) }

// BootTime is how long the last boot took, from starting linux.uml to the
// agent's first answer.
func (g *Guest) BootTime() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.booted
}

// Pid is the host pid of linux.uml, 0 when the guest is off.
func (g *Guest) Pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pid
}

// Alive: linux.uml runs.
func (g *Guest) Alive() bool {
	g.mu.Lock()
	pid, start := g.pid, g.start
	g.mu.Unlock()
	return pid != 0 && procAlive(pid, start)
}

// Guests are the lab's kernel clients, k1 first.
func (l *Lab) Guests() []*Guest { return append([]*Guest(nil), l.guests...) }

// Guest returns kernel client i, 1-based.
func (l *Lab) Guest(i int) *Guest {
	if i < 1 || i > len(l.guests) {
		panic(fmt.Sprintf("lab: kernel client %d: the lab has 1..%d", i, len(l.guests)))
	}
	return l.guests[i-1]
}

// guestSpec is what the guest's init reads from <guest dir>/spec.json.
type guestSpec struct {
	Hostname     string
	Addr4, Addr6 string // with prefix length
	UniqueID     string // nfs4_unique_id
	Modprobe     string // host path of the modprobe wrapper
	ModTree      string // modprobe -d
	Dir          string // host path of the guest's directory (hostfs on /lab)
	Port         int
}

func umlVersion() (string, error) {
	ents, err := os.ReadDir(umlModules)
	if err != nil {
		return "", fmt.Errorf("lab: kernel clients need user-mode-linux: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("lab: no kernel modules in %s", umlModules)
}

// prepareGuests writes what every guest shares (its init binary, the
// modules tree, the modprobe wrapper) and makes each guest's tap.
func (l *Lab) prepareGuests() error {
	if len(l.guests) == 0 {
		return nil
	}
	if _, err := os.Stat(umlBinary); err != nil {
		return fmt.Errorf("lab: kernel clients need user-mode-linux: %w", err)
	}
	ver, err := umlVersion()
	if err != nil {
		return err
	}
	gdir := filepath.Join(l.root, "guests")
	tree := filepath.Join(gdir, "modules")
	if err := os.MkdirAll(filepath.Join(tree, "lib", "modules"), 0o755); err != nil {
		return err
	}
	// The packaged tree already has modules.dep: a symlink is enough, and
	// nothing is written under /usr.
	if err := os.Symlink(filepath.Join(umlModules, ver), filepath.Join(tree, "lib", "modules", ver)); err != nil {
		return err
	}
	// The guest kernel asks for crypto modules (cifs) through
	// /proc/sys/kernel/modprobe: plain modprobe would look in the host's
	// /lib/modules.
	wrapper := fmt.Sprintf("#!/bin/sh\nexec /usr/sbin/modprobe -d %s \"$@\"\n", tree)
	if err := writeFile(filepath.Join(gdir, "modprobe"), []byte(wrapper), 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(self, filepath.Join(gdir, "init"), 0o755); err != nil {
		return err
	}
	for _, g := range l.guests {
		if err := os.MkdirAll(g.Dir(), 0o755); err != nil {
			return err
		}
		spec := guestSpec{
			Hostname: g.Hostname(), Addr4: g.addr4 + "/24", Addr6: g.addr6 + "/64",
			UniqueID: "storhaug-lab-" + g.Hostname(), Modprobe: filepath.Join(gdir, "modprobe"),
			ModTree: tree, Dir: g.Dir(), Port: GuestAgentPort,
		}
		b, _ := json.Marshal(spec)
		if err := writeFile(filepath.Join(g.Dir(), "spec.json"), b, 0o644); err != nil {
			return err
		}
		err := netnsdo.Do(l.bridgeNS(), func() error {
			tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: g.name}, Mode: netlink.TUNTAP_MODE_TAP,
				Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE}
			if err := netlink.LinkAdd(tap); err != nil {
				return err
			}
			br, err := netlink.LinkByName(bridgeName)
			if err != nil {
				return err
			}
			p, err := netlink.LinkByName(g.name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetMaster(p, br); err != nil {
				return err
			}
			return netlink.LinkSetUp(p)
		})
		if err != nil {
			return fmt.Errorf("lab: tap for %s: %w", g.name, err)
		}
	}
	return nil
}

// Console is the last lines of the guest's console (its kernel and
// init messages).
func (g *Guest) Console(lines int) string {
	b, err := os.ReadFile(filepath.Join(g.Dir(), "console.log"))
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(string(b), lines)
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Boot starts the guest and waits (bounded by ctx and 60 s) until its
// agent answers. Booting a running guest is a no-op.
func (g *Guest) Boot(ctx context.Context) error {
	if g.Alive() {
		return nil
	}
	t0 := time.Now()
	gdir := filepath.Dir(g.Dir())
	console, err := os.OpenFile(filepath.Join(g.Dir(), "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer console.Close()
	cmd := exec.Command(umlBinary)
	cmd.Args = []string{"storhaug-lab-guest:" + g.lab.opts.Prefix + ":" + g.name,
		fmt.Sprintf("mem=%dM", GuestMemMB), "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
		"init=" + filepath.Join(gdir, "init"), "con=null", "con0=null,fd:1", "ssl=null",
		// A fixed MAC: the neighbours' ARP entries stay right across reboots.
		// gro=1: the tap hands the guest the host's TCP segments unsplit
		// (up to 64 KiB); without it the guest's receive buffers hold one
		// MTU, it drops every larger frame ("Incoming GSO frames and GRO
		// disabled"), and a server's bulk replies crawl through
		// retransmissions (one NFS connection's pacing fell to 1.4 kbit/s).
		fmt.Sprintf("vec0:transport=tap,ifname=%s,mac=02:00:c6:33:64:%02x,gro=1", g.name, 150+g.index), "quiet",
		guestEnv + "=" + filepath.Join(g.Dir(), "spec.json")}
	cmd.Env = append([]string(nil), baseEnv...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is retired
		h, err := netns.GetFromName(g.lab.bridgeNS())
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("lab: guest %s: start: %w", g.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	start, _ := procStart(cmd.Process.Pid)
	g.mu.Lock()
	g.pid, g.start, g.exited = cmd.Process.Pid, start, exited
	g.mu.Unlock()
	if ns := pidNS(cmd.Process.Pid); ns != "" {
		g.lab.mu.Lock()
		g.lab.pidns = append(g.lab.pidns, ns)
		g.lab.mu.Unlock()
	}
	g.lab.saveState()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		select {
		case <-exited:
			stop(fmt.Errorf("linux.uml exited; console:\n%s", g.Console(30)))
		case <-ctx.Done():
		}
	}()
	err = g.lab.WaitFor(ctx, fmt.Sprintf("guest %s: agent answers", g.name), 60*time.Second, func() (bool, error) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, err := g.Run(cctx, "true")
		return err == nil, err
	})
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
		err = fmt.Errorf("lab: guest %s: %w", g.name, cause)
	}
	if err != nil {
		g.Kill()
		return err
	}
	g.mu.Lock()
	g.booted = time.Since(t0)
	g.mu.Unlock()
	g.lab.logf("guest %s booted in %.1fs", g.name, time.Since(t0).Seconds())
	return nil
}

// Kill SIGKILLs linux.uml (its PID namespace, with every helper, dies with
// it) and waits until it is gone: the client machine loses power.
func (g *Guest) Kill() error {
	g.mu.Lock()
	pid, start, exited := g.pid, g.start, g.exited
	g.pid, g.start, g.exited = 0, 0, nil
	g.mu.Unlock()
	defer g.lab.saveState()
	if pid == 0 {
		return nil
	}
	if err := killPid(pid, start, syscall.SIGKILL); err != nil {
		return err
	}
	if exited != nil {
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("lab: guest %s: pid %d did not end", g.name, pid)
		}
	}
	return waitGone(pid, start, 10*time.Second)
}

// PowerOff asks the guest to power off (sync, then the kernel halts) and
// waits until linux.uml has exited; if it does not within ctx (or 20 s),
// the guest is killed and an error returned.
func (g *Guest) PowerOff(ctx context.Context) error {
	g.mu.Lock()
	exited := g.exited
	g.mu.Unlock()
	if exited == nil {
		return nil
	}
	_, perr := g.call(ctx, guestRequest{PowerOff: true})
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	select {
	case <-exited:
		return g.Kill() // clears the record; the process is gone
	case <-ctx.Done():
		g.Kill()
		return fmt.Errorf("lab: guest %s did not power off (request: %v)", g.name, perr)
	}
}

// guestRequest is one command for the guest's agent (one JSON object per
// connection, answered by one guestResponse).
type guestRequest struct {
	Argv     []string `json:",omitempty"`
	Env      []string `json:",omitempty"`
	Stdin    string   `json:",omitempty"`
	PowerOff bool     `json:",omitempty"`
}

type guestResponse struct {
	Stdout, Stderr string
	Code           int
	Err            string `json:",omitempty"` // the command could not run
}

// call sends req to the agent from client c1's namespace; the connection
// is bounded by ctx (closing it kills the command in the guest).
func (g *Guest) call(ctx context.Context, req guestRequest) (guestResponse, error) {
	var resp guestResponse
	if len(g.lab.clients) == 0 {
		return resp, errors.New("lab: no client namespace to reach the guest from")
	}
	var conn net.Conn
	err := netnsdo.Do(g.lab.clients[0].ns, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(g.addr4, strconv.Itoa(GuestAgentPort)))
		return err
	})
	if err != nil {
		return resp, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return resp, err
	}
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, err
	}
	return resp, nil
}

// Run runs a command in the guest (environment: PATH, LANG, HOME) and
// returns its output; err is non-nil when the guest cannot be reached, ctx
// ends (the command is killed), or the exit code is not 0 (*ExitError).
func (g *Guest) Run(ctx context.Context, name string, args ...string) (Result, error) {
	return g.Exec(ctx, nil, name, args...)
}

// Exec is Run with extra environment variables.
func (g *Guest) Exec(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	resp, err := g.call(ctx, guestRequest{Argv: append([]string{name}, args...), Env: env})
	r := Result{Stdout: resp.Stdout, Stderr: resp.Stderr, Code: resp.Code}
	if err != nil {
		return r, fmt.Errorf("lab: guest %s: %s: %w", g.name, name, err)
	}
	if resp.Err != "" {
		return r, fmt.Errorf("lab: guest %s: %s: %s", g.name, name, resp.Err)
	}
	if r.Code != 0 {
		return r, &ExitError{Where: g.name, Cmd: strings.Join(append([]string{name}, args...), " "), Result: r}
	}
	return r, nil
}

// Sh runs a shell script in the guest.
func (g *Guest) Sh(ctx context.Context, script string) (Result, error) {
	return g.Run(ctx, "/bin/sh", "-c", script)
}
