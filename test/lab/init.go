package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/sys/unix"
)

// A node's PID 1 is this very program, started again with initEnv set: it
// makes the node's mounts (all private to the node's mount namespace), sets
// its hostname, reports on fd 3 and then reaps orphans until it is killed.
// Killing it kills every process of the node at once (a crash).
const initEnv = "STORHAUG_LAB_NODE_INIT"

func init() {
	if spec := os.Getenv(initEnv); spec != "" {
		os.Exit(nodeInit(spec))
	}
}

type initSpec struct {
	Hostname string
	Mounts   []mountSpec
	Dirs     []dirSpec // made after the mounts (on the fresh tmpfs /run)
}

type mountSpec struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

type dirSpec struct {
	Path     string
	Mode     os.FileMode
	UID, GID int
}

func nodeInit(specJSON string) int {
	ready := os.NewFile(3, "ready")
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "lab init: %v\n", err)
		if ready != nil {
			fmt.Fprintf(ready, "error: %v\n", err)
		}
		return 1
	}
	var spec initSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fail(err)
	}
	// First of all: nothing mounted here may propagate to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("make / private: %w", err))
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail(fmt.Errorf("mount /proc: %w", err))
	}
	// sysfs as this node's network namespace sees it (/sys/class/net).
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail(fmt.Errorf("mount /sys: %w", err))
	}
	// Drop the copies of named network namespaces (this lab's and other
	// labs'): they would keep those namespaces alive after their owners
	// delete them.
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		var nsMounts []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && (fields[4] == "/run/netns" || strings.HasPrefix(fields[4], "/run/netns/")) {
				nsMounts = append(nsMounts, fields[4])
			}
		}
		f.Close()
		for i := len(nsMounts) - 1; i >= 0; i-- {
			m := nsMounts[i]
			unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	for _, m := range spec.Mounts {
		if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
			return fail(fmt.Errorf("mount %s on %s (%s): %w", m.Source, m.Target, m.FSType, err))
		}
		if m.Flags&unix.MS_BIND != 0 && m.Flags&unix.MS_RDONLY != 0 {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fail(fmt.Errorf("remount %s read-only: %w", m.Target, err))
			}
		}
	}
	for _, d := range spec.Dirs {
		if err := os.MkdirAll(d.Path, d.Mode); err != nil {
			return fail(err)
		}
		os.Chmod(d.Path, d.Mode)
		os.Chown(d.Path, d.UID, d.GID)
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fail(fmt.Errorf("hostname: %w", err))
	}
	os.Chdir("/")
	fmt.Fprintln(ready, "ok")
	ready.Close()

	// PID 1 of the node: reap every orphan; ignore the signals a PID 1 is
	// sent from inside (the host's SIGKILL still ends it).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-sigs
	}
}
