// Package proc manages storhaug's own processes: it starts a detached
// helper (the storhaug binary again, in a session of its own), finds a
// process by its exact command line, stops one with SIGTERM then SIGKILL
// within the caller's deadline, and is the one reader of /proc/<pid>/stat.
//
// None of these processes is the caller's child once started, so there is
// nothing to wait(2) for: a process is gone when /proc no longer shows it
// alive.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stat is what /proc/<pid>/stat says of a process.
type Stat struct {
	Comm  string // the command's name, cut at 15 bytes
	State byte   // R, S, D, Z, X...
	PPID  int
	// UTime and STime are the CPU time spent in user and kernel mode, in
	// clock ticks (USER_HZ, 100 a second on Linux).
	UTime, STime uint64
	// Start is when the process started, in clock ticks after boot: with
	// the pid, it names the process (a reused pid has another Start).
	Start uint64
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i || j+2 >= len(b) {
		return Stat{}, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, b)
	}
	s := Stat{Comm: string(b[i+1 : j]), State: b[j+2]}
	// The fields after comm, from the state (field 3 of proc(5)) on.
	f := strings.Fields(string(b[j+1:]))
	if len(f) >= 2 {
		s.PPID, _ = strconv.Atoi(f[1])
	}
	if len(f) >= 20 {
		s.UTime, _ = strconv.ParseUint(f[11], 10, 64)
		s.STime, _ = strconv.ParseUint(f[12], 10, 64)
		s.Start, _ = strconv.ParseUint(f[19], 10, 64)
	}
	return s, nil
}

// Alive reports whether pid is a process that runs: it exists and is not
// a zombie.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	s, err := ReadStat(pid)
	return err == nil && s.State != 'Z' && s.State != 'X'
}

// Cmdline returns the arguments pid runs with.
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// Runs reports whether pid is alive and runs with exactly args (argv[0]
// included).
func Runs(pid int, args []string) bool {
	if pid <= 1 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || string(b) != strings.Join(args, "\x00")+"\x00" {
		return false
	}
	return Alive(pid)
}

// Helper is a process of the storhaug binary that outlives the action
// starting it.
type Helper struct {
	Args []string // argv, argv[0] naming what the binary runs as
	Env  []string // its whole environment
	Nice int      // when > 0, its lowered scheduling priority
}

// Spawn starts the running binary as h, in a session of its own (so that
// the end of the caller's process group does not reach it), its standard
// input, output and error /dev/null (a caller's reader waits for them to
// close), and returns its pid.
//
// It refuses to run when the running binary is a Go test binary (name
// ending in .test): re-executed, a test binary runs its tests again, and
// a test that reaches Spawn would start copies of itself without end.
// Tests replace the spawn or run the real storhaug binary.
func Spawn(h Helper) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if isTestBinary(exe) && !reexecTestBinary {
		return 0, fmt.Errorf("not re-executing the test binary %s as %q", exe, strings.Join(h.Args, " "))
	}
	cmd := &exec.Cmd{Path: exe, Args: h.Args, Env: h.Env, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	if h.Nice > 0 {
		syscall.Setpriority(syscall.PRIO_PROCESS, pid, h.Nice)
	}
	return pid, nil
}

// WaitGone waits until same(pid) is false (the process exited, or pid is
// no longer the process meant) or ctx ends; it reports whether it is gone.
// It checks after 0.5 ms, then less and less often, up to every 20 ms.
func WaitGone(ctx context.Context, pid int, same func(int) bool) bool {
	d := 500 * time.Microsecond
	for {
		if !same(pid) {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return !same(pid)
		case <-t.C:
		}
		d = min(2*d, 20*time.Millisecond)
	}
}

// ErrStillRunning is a process SIGKILL did not end within the deadline.
var ErrStillRunning = errors.New("still running after SIGKILL")

// Stop ends the process pid, while same(pid) says it is still the one
// meant: SIGTERM, a wait until only a reserve of ctx's time is left (a
// quarter of it, at most 3 s), then SIGKILL and a wait until ctx ends.
// Without a deadline, each wait is 3 s. It returns the last signal sent (0: pid was not
// running).
func Stop(ctx context.Context, pid int, same func(int) bool) (syscall.Signal, error) {
	if !same(pid) {
		return 0, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return syscall.SIGTERM, fmt.Errorf("SIGTERM to %d: %w", pid, err)
	}
	var termCtx context.Context
	var cancel context.CancelFunc
	if dl, ok := ctx.Deadline(); ok {
		termCtx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Until(dl)/4, 3*time.Second)))
	} else {
		termCtx, cancel = context.WithTimeout(ctx, 3*time.Second)
	}
	gone := WaitGone(termCtx, pid, same)
	cancel()
	if gone {
		return syscall.SIGTERM, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return syscall.SIGKILL, fmt.Errorf("SIGKILL to %d: %w", pid, err)
	}
	killCtx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		killCtx, cancel = context.WithTimeout(ctx, 3*time.Second)
	}
	defer cancel()
	if WaitGone(killCtx, pid, same) {
		return syscall.SIGKILL, nil
	}
	return syscall.SIGKILL, fmt.Errorf("pid %d: %w", pid, ErrStillRunning)
}

// ReadPidfile returns the pid recorded in path: 0 when the file is
// missing, an error when it holds no pid.
func ReadPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds %q, not a pid", path, s)
	}
	return pid, nil
}

// reexecTestBinary lets this package's own tests, whose TestMain acts as
// the helper, re-execute the test binary.
var reexecTestBinary = false

// isTestBinary says whether exe is a binary go test built.
func isTestBinary(exe string) bool { return strings.HasSuffix(exe, ".test") }
