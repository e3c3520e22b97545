package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/proc"
)

// nsRE matches the network namespaces of a lab with this prefix, and no
// other lab's ("shlab-n1" but not "shlab2-n1").
func nsRE(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-(br|n[0-9]+|c[0-9]+)$`)
}

// Sweep removes whatever a lab with this prefix left behind: it SIGKILLs
// the node inits recorded in the lab's state (only those, by pid and start
// time; each takes its whole PID namespace with it), deletes the lab's
// network namespaces and its directory. Up calls it first; Down is Sweep.
func Sweep(prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab: prefix %q is not a lab prefix", prefix)
	}
	var errs []error
	// The fence daemon first: it must not boot a node while they go.
	for _, p := range labProcs(prefix) {
		if p.fenced {
			if err := killPid(p.pid, p.start, syscall.SIGKILL); err != nil {
				errs = append(errs, err)
			} else if err := waitGone(p.pid, p.start, 10*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if st, err := readState(prefix); err == nil {
		// Kernel clients first (each linux.uml is PID 1 of its own PID
		// namespace: its helpers die with it), then the nodes.
		for _, g := range st.Guests {
			if g.Pid > 1 && procAlive(g.Pid, g.Start) {
				if err := killPid(g.Pid, g.Start, syscall.SIGKILL); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, g := range st.Guests {
			if g.Pid > 1 {
				if err := waitGone(g.Pid, g.Start, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, n := range st.Nodes {
			if n.Pid > 1 && procAlive(n.Pid, n.Start) {
				if err := killPid(n.Pid, n.Start, syscall.SIGKILL); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, n := range st.Nodes {
			if n.Pid > 1 {
				if err := waitGone(n.Pid, n.Start, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// A node init the state does not name (its booter died before
	// recording it): found by its name, which only the lab gives.
	for _, p := range labProcs(prefix) {
		if !p.fenced {
			if err := killPid(p.pid, p.start, syscall.SIGKILL); err != nil {
				errs = append(errs, err)
			} else if err := waitGone(p.pid, p.start, 10*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	re := nsRE(prefix)
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			if err := netns.DeleteNamed(e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("lab: delete network namespace %s: %w", e.Name(), err))
			}
		}
	}
	root := Root(prefix)
	for _, m := range hostMountsUnder(root) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if err := os.RemoveAll(root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hostMountsUnder lists mount points (in this process's mount namespace)
// at or below dir, deepest first.
func hostMountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) > 4 && (fl[4] == dir || strings.HasPrefix(fl[4], dir+"/")) {
			out = append([]string{fl[4]}, out...)
		}
	}
	return out
}

// Leftovers lists what remains on this machine of a lab with this prefix:
// its directory, network namespaces, mounts, and processes (its node inits,
// and any process still in a PID namespace of a recorded node). Empty after
// a clean Down.
func Leftovers(prefix string) []string {
	var out []string
	root := Root(prefix)
	if _, err := os.Lstat(root); err == nil {
		out = append(out, "directory "+root)
	}
	re := nsRE(prefix)
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, "network namespace "+e.Name())
		}
	}
	for _, m := range hostMountsUnder(root) {
		out = append(out, "mount "+m)
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) > 4 && strings.HasPrefix(fl[4], "/run/netns/") && re.MatchString(filepath.Base(fl[4])) {
				out = append(out, "mount "+fl[4])
			}
		}
		f.Close()
	}
	for _, p := range labProcs(prefix) {
		out = append(out, fmt.Sprintf("process %d (%s)", p.pid, p.cmdline))
	}
	return out
}

type labProc struct {
	pid     int
	start   uint64
	cmdline string
	fenced  bool // the fence daemon (else a node init)
}

// labProcs lists the processes of the lab with this prefix that the lab
// names: node inits (storhaug-lab-init:<prefix>:<node>), kernel clients
// (storhaug-lab-guest:<prefix>:<guest>) and the fence daemon
// (storhaug-lab-fenced:<prefix>).
func labProcs(prefix string) []labProc {
	initMarker := "storhaug-lab-init:" + prefix + ":"
	guestMarker := "storhaug-lab-guest:" + prefix + ":"
	fenced := fencedMarker(prefix)
	var out []labProc
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, _ := proc.Cmdline(pid)
		if len(args) == 0 {
			continue
		}
		arg0 := args[0]
		isFenced := arg0 == fenced
		if !isFenced && !strings.HasPrefix(arg0, initMarker) && !strings.HasPrefix(arg0, guestMarker) {
			continue
		}
		if start, err := procStart(pid); err == nil {
			out = append(out, labProc{pid: pid, start: start, cmdline: strings.Join(args, "\x00"), fenced: isFenced})
		}
	}
	return out
}

// Leftovers is Leftovers(prefix) plus any process still living in a PID
// namespace that one of this lab's nodes ever had.
func (l *Lab) Leftovers() []string {
	out := Leftovers(l.opts.Prefix)
	l.mu.Lock()
	nss := append([]string(nil), l.pidns...)
	l.mu.Unlock()
	for _, ns := range nss {
		procs := procsInNS(ns)
		if nsOfOtherLab(procs, l.opts.Prefix) {
			continue
		}
		for _, p := range procs {
			out = append(out, fmt.Sprintf("process %d (%s) in %s", p.HostPid, p.Comm, ns))
		}
	}
	return out
}

// nsOfOtherLab tells whether a PID namespace's init is another lab's node
// or guest: the kernel reuses a dead namespace's inode number, so a
// namespace one of our nodes once had can now be a node of a lab started
// beside this one.
func nsOfOtherLab(procs []Proc, prefix string) bool {
	for _, p := range procs {
		if p.Pid != 1 {
			continue
		}
		args, _ := proc.Cmdline(p.HostPid)
		if len(args) == 0 {
			continue
		}
		arg0 := args[0]
		for _, kind := range []string{"storhaug-lab-init:", "storhaug-lab-guest:"} {
			if strings.HasPrefix(arg0, kind) && !strings.HasPrefix(arg0, kind+prefix+":") {
				return true
			}
		}
	}
	return false
}
