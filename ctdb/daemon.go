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

	"github.com/storhaug/storhaug/internal/proc"
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
	if !d.Alive(pid) {
		return 0
	}
	return pid
}

// Alive reports whether pid is a live (not zombie) process of our ctdbd
// binary.
func (d *Daemon) Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := proc.ReadStat(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return false
	}
	want := filepath.Base(d.Path)
	if len(want) > 15 {
		want = want[:15]
	}
	return st.Comm == want
}

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
	switch sig, err := proc.Stop(ctx, pid, d.Alive); {
	case err != nil:
		return "", fmt.Errorf("ctdbd: %w", err)
	case sig == syscall.SIGKILL:
		return fmt.Sprintf("ended by SIGKILL (pid %d)", pid), nil
	}
	return fmt.Sprintf("ended by SIGTERM (pid %d; shutdown: %v)", pid, serr), nil
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
	st, err := proc.ReadStat(p)
	if err != nil {
		return 0
	}
	return st.PPID
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
		args, err := proc.Cmdline(p)
		if err != nil || len(args) == 0 {
			continue
		}
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
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	return proc.WaitGone(ctx, pid, d.Alive)
}
