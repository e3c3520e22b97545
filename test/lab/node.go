package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/netnsdo"
	"github.com/storhaug/storhaug/internal/proc"
)

// Node is one cluster node: its hostname and Pacemaker node name is Name().
type Node struct {
	lab          *Lab
	name         string
	index        int
	addr4, addr6 string

	mu     sync.Mutex
	pid    int    // host pid of the node's init, 0 when crashed/down
	start  uint64 // its start time (clock ticks since boot)
	exited chan struct{}
}

// Name is the node's name: hostname, Pacemaker and corosync node name.
func (n *Node) Name() string { return n.name }

// ID is the node's number (1 for n1): corosync nodeid, CTDB pnn + 1.
func (n *Node) ID() int { return n.index }

// Addr4 is the node's IPv4 address on eth0 (/24).
func (n *Node) Addr4() string { return n.addr4 }

// Addr6 is the node's IPv6 address on eth0 (/64).
func (n *Node) Addr6() string { return n.addr6 }

// Link is the node's interface on the lab network.
func (n *Node) Link() string { return "eth0" }

// NetNS is the name of the node's network namespace (under /run/netns);
// it outlives crashes. Use it with internal/netnsdo or `ip netns exec`.
func (n *Node) NetNS() string { return nsName(n.lab.opts.Prefix, n.name) }

// NetNSPath is the file of the node's network namespace (nsenter --net=).
func (n *Node) NetNSPath() string { return "/run/netns/" + n.NetNS() }

// Do runs fn on an OS thread inside the node's network namespace (only the
// network namespace: the file system fn sees is the host's).
func (n *Node) Do(fn func() error) error { return netnsdo.Do(n.NetNS(), fn) }

// Dir is the node's private directory on the host.
func (n *Node) Dir() string { return filepath.Join(n.lab.root, "nodes", n.name) }

// LogDir is, on the host, the directory mounted at /var/log in the node.
func (n *Node) LogDir() string { return filepath.Join(n.Dir(), "log") }

// Pid is the host pid of the node's PID 1, 0 if the node is down.
func (n *Node) Pid() int {
	pid, _ := n.initPid()
	return pid
}

// Alive reports whether the node's PID 1 runs.
func (n *Node) Alive() bool {
	pid, start := n.initPid()
	return pid != 0 && procAlive(pid, start)
}

// initPid is the node's init as this process knows it; when that one is
// gone, the lab's state file may name a newer one, booted by another
// process of the lab (the fence daemon powering the node on, or the
// process that brought the lab up recovering it).
func (n *Node) initPid() (int, uint64) {
	n.mu.Lock()
	pid, start := n.pid, n.start
	n.mu.Unlock()
	if pid != 0 && procAlive(pid, start) {
		return pid, start
	}
	st, err := readState(n.lab.opts.Prefix)
	if err != nil {
		return pid, start
	}
	for _, ns := range st.Nodes {
		if ns.Name != n.name || ns.Pid <= 1 || (ns.Pid == pid && ns.Start == start) || !procAlive(ns.Pid, ns.Start) {
			continue
		}
		n.mu.Lock()
		if n.pid == pid && n.start == start {
			n.pid, n.start, n.exited = ns.Pid, ns.Start, nil
		}
		pid, start = n.pid, n.start
		n.mu.Unlock()
		if p := pidNS(pid); p != "" {
			n.lab.mu.Lock()
			n.lab.pidns = append(n.lab.pidns, p)
			n.lab.mu.Unlock()
		}
	}
	return pid, start
}

// Path is the host path through which a path inside the running node can
// be read and written: /proc/<pid>/root + p.
func (n *Node) Path(p string) (string, error) {
	pid, start := n.initPid()
	if pid == 0 || !procAlive(pid, start) {
		return "", fmt.Errorf("lab: node %s is down", n.name)
	}
	return fmt.Sprintf("/proc/%d/root%s", pid, filepath.Clean("/"+p)), nil
}

// WriteFile writes a file inside the running node, atomically, making its
// parent directories if needed (e.g. /etc/sysconfig, in the node's /etc).
func (n *Node) WriteFile(p string, data []byte, perm os.FileMode) error {
	hp, err := n.Path(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(hp, data, perm)
}

// ReadFile reads a file inside the running node.
func (n *Node) ReadFile(p string) ([]byte, error) {
	hp, err := n.Path(p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(hp)
}

// baseEnv is the environment commands and daemons get inside a node.
var baseEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8", "HOME=/root", "TERM=dumb",
}

// Command returns a command that runs inside the node (all its
// namespaces), with a clean environment (PATH, LANG, HOME) plus env. The
// caller may set Stdin/Stdout/Stderr and starts it; when ctx ends, the
// whole command is killed, also its part inside the node.
func (n *Node) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	pid, _ := n.initPid()
	argv := append([]string{"-t", strconv.Itoa(pid), "-m", "-n", "-u", "-i", "-p", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(append([]string(nil), baseEnv...), env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process != nil {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int // exit code; -1 if it did not run or was killed
}

// Output is Stdout and Stderr together.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// ExitError is the error of a command that ran and exited non-zero.
type ExitError struct {
	Where, Cmd string
	Result
}

func (e *ExitError) Error() string {
	out := strings.TrimSpace(e.Stderr)
	if out == "" {
		out = strings.TrimSpace(e.Stdout)
	}
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	return fmt.Sprintf("%s: %s: exit %d: %s", e.Where, e.Cmd, e.Code, out)
}

// Run runs a command inside the node and returns what it printed and its
// exit code. The error is non-nil if the node is down, the command could
// not run, ctx ended, or it exited non-zero (an *ExitError; Result.Code has
// the code either way).
func (n *Node) Run(ctx context.Context, name string, args ...string) (Result, error) {
	return n.Exec(ctx, nil, name, args...)
}

// Exec is Run with extra environment variables ("K=V").
func (n *Node) Exec(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	if !n.Alive() {
		return Result{Code: -1}, fmt.Errorf("lab: node %s is down: cannot run %s", n.name, name)
	}
	return runCmd(n.Command(ctx, env, name, args...), n.name, name, args)
}

// Sh runs a shell command line inside the node (sh -c).
func (n *Node) Sh(ctx context.Context, script string) (Result, error) {
	return n.Run(ctx, "sh", "-c", script)
}

func runCmd(cmd *exec.Cmd, where, name string, args []string) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: -1}
	cmdline := strings.TrimSpace(name + " " + strings.Join(args, " "))
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
		return r, nil
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
		return r, &ExitError{Where: where, Cmd: cmdline, Result: r}
	default:
		return r, fmt.Errorf("%s: %s: %w (%s)", where, cmdline, err, strings.TrimSpace(r.Stderr))
	}
}

// boot starts the node's PID 1 inside its network namespace, with new
// mount, UTS, IPC and PID namespaces, and waits until its mounts are made.
func (n *Node) boot() error {
	spec, err := json.Marshal(n.initSpec())
	if err != nil {
		return err
	}
	// A machine that boots has its links up and only its own addresses
	// (not the VIPs it held before a crash).
	if err := n.resetLinks(); err != nil {
		return fmt.Errorf("lab: node %s: links: %w", n.name, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(n.LogDir(), "lab"), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.LogDir(), "lab", "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(self)
	cmd.Args = []string{"storhaug-lab-init:" + n.lab.opts.Prefix + ":" + n.name}
	cmd.Env = append(append([]string(nil), baseEnv...), initEnv+"="+string(spec))
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWPID,
		Setsid:     true,
	}
	// The child inherits the network namespace of the thread that forks it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is retired
		h, err := netns.GetFromName(n.NetNS())
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
	err = <-errc
	w.Close()
	if err != nil {
		return fmt.Errorf("lab: node %s: start: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	start, _ := procStart(cmd.Process.Pid)
	n.mu.Lock()
	n.pid, n.start, n.exited = cmd.Process.Pid, start, exited
	n.mu.Unlock()
	if ns := pidNS(cmd.Process.Pid); ns != "" {
		n.lab.mu.Lock()
		n.lab.pidns = append(n.lab.pidns, ns)
		n.lab.mu.Unlock()
	}
	n.lab.saveState()

	msg := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); msg <- strings.TrimSpace(string(b)) }()
	select {
	case m := <-msg:
		if m != "ok" {
			n.kill()
			return fmt.Errorf("lab: node %s: init: %s (log: %s)", n.name, m, filepath.Join(n.LogDir(), "lab", "init.log"))
		}
	case <-time.After(30 * time.Second):
		n.kill()
		return fmt.Errorf("lab: node %s: init did not report within 30s", n.name)
	}
	return nil
}

// kill SIGKILLs the node's PID 1 (which takes every process of the node
// with it) and waits until it is gone.
func (n *Node) kill() error {
	n.initPid() // a node another process of the lab booted
	n.mu.Lock()
	pid, start, exited := n.pid, n.start, n.exited
	n.pid, n.start, n.exited = 0, 0, nil
	n.mu.Unlock()
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
			return fmt.Errorf("lab: node %s: pid %d did not end", n.name, pid)
		}
	}
	return waitGone(pid, start, 10*time.Second)
}

// procStart reads a process's start time, which with the pid names it;
// a zombie has none (os.ErrNotExist).
func procStart(pid int) (uint64, error) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return 0, err
	}
	if st.State == 'Z' || st.State == 'X' {
		return 0, os.ErrNotExist
	}
	return st.Start, nil
}

// procAlive: the process with that pid and start time still runs.
func procAlive(pid int, start uint64) bool {
	s, err := procStart(pid)
	return err == nil && (start == 0 || s == start)
}

// killPid signals pid only if it is still the process that was recorded.
func killPid(pid int, start uint64, sig syscall.Signal) error {
	if pid <= 1 || !procAlive(pid, start) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}

func waitGone(pid int, start uint64, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if !proc.WaitGone(ctx, pid, func(pid int) bool { return procAlive(pid, start) }) {
		return fmt.Errorf("lab: pid %d still runs after %s", pid, d)
	}
	return nil
}

// pidNS is the identity of a process's PID namespace ("pid:[4026532...]").
func pidNS(pid int) string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return s
}

// Proc is a process running inside a node.
type Proc struct {
	HostPid int    // pid on the host (what the lab signals)
	Pid     int    // pid inside the node
	Comm    string // the command's name (at most 15 characters)
	start   uint64
}

// Procs lists the processes running inside the node.
func (n *Node) Procs() ([]Proc, error) {
	pid, start := n.initPid()
	if pid == 0 || !procAlive(pid, start) {
		return nil, fmt.Errorf("lab: node %s is down", n.name)
	}
	ns := pidNS(pid)
	if ns == "" {
		return nil, fmt.Errorf("lab: node %s: no pid namespace", n.name)
	}
	return procsInNS(ns), nil
}

func procsInNS(ns string) []Proc {
	ents, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range ents {
		hp, err := strconv.Atoi(e.Name())
		if err != nil || pidNS(hp) != ns {
			continue
		}
		st, err := proc.ReadStat(hp)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		p := Proc{HostPid: hp, Comm: st.Comm, start: st.Start}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hp)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "NSpid:") {
					f := strings.Fields(line)
					p.Pid, _ = strconv.Atoi(f[len(f)-1])
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func commMatch(comm, name string) bool {
	if len(name) > 15 {
		name = name[:15]
	}
	return comm == name
}

// signalProcs sends sig to the node's processes called one of names and
// returns how many it signalled.
func (n *Node) signalProcs(sig syscall.Signal, names ...string) (int, error) {
	procs, err := n.Procs()
	if err != nil {
		return 0, err
	}
	count := 0
	for _, p := range procs {
		if p.Pid == 1 {
			continue
		}
		for _, name := range names {
			if commMatch(p.Comm, name) {
				if err := killPid(p.HostPid, p.start, sig); err != nil {
					return count, err
				}
				count++
				break
			}
		}
	}
	return count, nil
}

// running reports whether any process called one of names runs in the node.
func (n *Node) running(names ...string) bool {
	procs, err := n.Procs()
	if err != nil {
		return false
	}
	for _, p := range procs {
		for _, name := range names {
			if commMatch(p.Comm, name) {
				return true
			}
		}
	}
	return false
}

// Running reports whether a process with that name (as in /proc/pid/comm)
// runs in the node.
func (n *Node) Running(name string) bool { return n.running(name) }

// initSpec is what the node's init sets up: its host name, its mounts
// and the directories made after them.
func (n *Node) initSpec() initSpec {
	d := n.Dir()
	l := n.lab
	bind := func(src, dst string) mountSpec {
		return mountSpec{Source: src, Target: dst, Flags: unix.MS_BIND}
	}
	s := initSpec{Hostname: n.name}
	s.Mounts = append(s.Mounts,
		mountSpec{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755,size=256m"},
		mountSpec{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777,size=512m"},
		mountSpec{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777,size=256m"},
		// A node's root has a home of its own: the host's /root holds the host
		// user's login profile (on these machines it runs "pyenv rehash",
		// which waits for ever on a lock a killed "su -" leaves behind), and
		// "su -" is how ocf:heartbeat:anything starts its service.
		mountSpec{Source: "tmpfs", Target: "/root", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0700,size=64m"},
		mountSpec{Source: "overlay", Target: "/etc", FSType: "overlay",
			Data: fmt.Sprintf("lowerdir=/etc,upperdir=%s,workdir=%s", filepath.Join(d, "etc"), filepath.Join(d, ".etc-work"))},
	)
	for _, v := range privateVarDirs {
		s.Mounts = append(s.Mounts, bind(filepath.Join(d, "var", v), filepath.Join("/var", v)))
	}
	s.Mounts = append(s.Mounts,
		bind(n.nfsStateDir(), "/var/lib/nfs"),
		bind(n.LogDir(), "/var/log"),
	)
	// Read-only overlays: the lab's provider dir and binaries (storhaug,
	// the fence agent) on top of the host's, which stay untouched.
	if l.opts.Storhaug != "" {
		ocf, _ := l.storhaugDirs()
		s.Mounts = append(s.Mounts,
			mountSpec{Source: "overlay", Target: "/usr/lib/ocf/resource.d", FSType: "overlay", Flags: unix.MS_RDONLY,
				Data: fmt.Sprintf("lowerdir=%s:/usr/lib/ocf/resource.d", ocf)})
	}
	if l.opts.Storhaug != "" || l.opts.Pacemaker != Off {
		lower := filepath.Join(l.root, "sbin")
		if isDeb(l.opts.Storhaug) {
			_, sbin := l.storhaugDirs()
			lower = sbin + ":" + lower
		}
		s.Mounts = append(s.Mounts,
			mountSpec{Source: "overlay", Target: "/usr/sbin", FSType: "overlay", Flags: unix.MS_RDONLY,
				Data: fmt.Sprintf("lowerdir=%s:/usr/sbin", lower)})
	}
	s.Dirs = runDirs()
	return s
}

// nfsStateDir is the node's /var/lib/nfs, on the shared storage (as the
// original storhaug had it): <shared>/nfs-ganesha/<node>.
func (n *Node) nfsStateDir() string {
	return filepath.Join(n.lab.SharedDir(), "nfs-ganesha", n.name)
}
