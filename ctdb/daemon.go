package ctdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Daemon starts and stops one ctdbd.
type Daemon struct {
	Path   string   // the ctdbd binary
	RunDir string   // where ctdbd writes ctdbd.pid (its built-in /run/ctdb)
	Env    []string // added to ctdbd's environment (CTDB_SOCKET)
	// MaxOpenFiles, when > 0, is ctdbd's limit of open files.
	MaxOpenFiles int
}

// PidFile is where ctdbd records its pid.
func (d *Daemon) PidFile() string { return filepath.Join(d.RunDir, "ctdbd.pid") }

// PID returns the pid of the running ctdbd, from its pid file, checked
// against /proc: 0 when the file is missing or stale, or the process is a
// zombie or some other program.
func (d *Daemon) PID() int {
	b, err := os.ReadFile(d.PidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !d.isOurs(pid) {
		return 0
	}
	return pid
}

// isOurs reports whether pid is a live (not zombie) process of our ctdbd binary.
func (d *Daemon) isOurs(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || i+2 >= len(stat) {
		return false
	}
	comm, state := string(stat[j+1:i]), stat[i+2]
	if state == 'Z' || state == 'X' {
		return false
	}
	want := filepath.Base(d.Path)
	if len(want) > 15 {
		want = want[:15]
	}
	return comm == want
}

// Alive reports whether pid still is a live process of our ctdbd.
func (d *Daemon) Alive(pid int) bool { return pid > 0 && d.isOurs(pid) }

// Start runs ctdbd, which forks into the background and returns; it
// returns the daemon's pid. The daemon is in a session of its own, so
// that the end of the caller's process group does not end it.
func (d *Daemon) Start(ctx context.Context) (int, error) {
	if d.MaxOpenFiles > 0 {
		lim := syscall.Rlimit{Cur: uint64(d.MaxOpenFiles), Max: uint64(d.MaxOpenFiles)}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err == nil && cur.Max > lim.Max && os.Geteuid() != 0 {
			lim.Max = cur.Max
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("cannot set the open files limit to %d: %w", d.MaxOpenFiles, err)
		}
	}
	cmd := exec.CommandContext(ctx, d.Path)
	cmd.Env = append(cmd.Environ(), d.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := clip(out.Bytes())
		if msg != "" {
			return 0, fmt.Errorf("%s failed: %v: %s", d.Path, err, msg)
		}
		return 0, fmt.Errorf("%s failed: %v (see its log)", d.Path, err)
	}
	// ctdbd writes its pid file before its parent returns.
	for {
		if pid := d.PID(); pid > 0 {
			return pid, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s started but wrote no pid to %s", d.Path, d.PidFile())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends ctdbd: "ctdb shutdown" (within the tool's own time limit),
// then a wait for the pid to go, bounded by ctx less a reserve, then
// SIGTERM and SIGKILL of that pid only. It returns how it ended.
func (d *Daemon) Stop(ctx context.Context, tool *Tool) (how string, err error) {
	pid := d.PID()
	if last := d.recordedPID(); last > 0 {
		// Whichever way ctdbd ends (or ended: killed, it leaves its pid
		// file), its event daemon must be gone before Stop returns, or the
		// next ctdbd cannot start one of its own.
		defer func() {
			if err == nil {
				d.endHelpers(ctx, last)
			}
		}()
	}
	serr := tool.Shutdown(ctx)
	if errors.Is(serr, ErrNotRunning) && pid == 0 {
		return "not running", nil
	}
	if pid == 0 {
		// No pid file: the socket answered, so ctdbd is there; give it
		// the time to go by itself.
		if serr != nil {
			return "", fmt.Errorf("ctdbd has no pid file and did not shut down: %w", serr)
		}
		return "shut down", nil
	}
	reserve := 3 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*reserve {
		reserve = time.Until(dl) / 2
	}
	if d.waitGone(ctx, pid, reserve) {
		return "shut down", nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if d.waitGone(ctx, pid, reserve/2) {
		return fmt.Sprintf("ended by SIGTERM (pid %d; shutdown: %v)", pid, serr), nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if d.waitGone(ctx, pid, 0) {
		return fmt.Sprintf("ended by SIGKILL (pid %d)", pid), nil
	}
	return "", fmt.Errorf("ctdbd (pid %d) is still running after SIGKILL", pid)
}

// recordedPID is the pid in ctdbd's pid file, alive or not.
func (d *Daemon) recordedPID() int {
	b, err := os.ReadFile(d.PidFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// helpersOf returns the pids of the event daemons ctdbd pid started: they
// run as "ctdb-eventd -P <pid>" and outlive a killed ctdbd for up to a
// second, during which a new ctdbd fails to start its own. A helper's own
// child caught between fork and exec (an event script starting) bears the
// same command line; it is not counted.
func helpersOf(pid int) []int {
	pids := matchHelpers(pid)
	if len(pids) < 2 {
		return pids
	}
	return slices.DeleteFunc(pids, func(p int) bool { return slices.Contains(pids, parentOf(p)) })
}

// parentOf returns the parent pid of p, or 0.
func parentOf(p int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func matchHelpers(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(pid)
	var pids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "ctdb-eventd" {
			continue
		}
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "-P" && args[i+1] == want {
				pids = append(pids, p)
				break
			}
		}
	}
	return pids
}

// endHelpers waits, for at most 2 s within ctx, until the event daemons of
// the ctdbd that was pid have gone by themselves, then ends the rest by pid.
func (d *Daemon) endHelpers(ctx context.Context, pid int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		left := helpersOf(pid)
		if len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitGone waits until pid is gone or ctx is reserve from its end.
func (d *Daemon) waitGone(ctx context.Context, pid int, reserve time.Duration) bool {
	var stop <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		stop = time.After(time.Until(dl) - reserve)
	}
	for {
		if !d.Alive(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return !d.Alive(pid)
		case <-stop:
			return !d.Alive(pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
