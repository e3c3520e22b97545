package ganesha

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/internal/proc"
)

// ErrBadPidfile: the pidfile holds no pid; no daemon can be found by it.
var ErrBadPidfile = errors.New("pidfile holds no pid")

// DefaultBinary is where Debian and Fedora install the daemon.
const DefaultBinary = "/usr/bin/ganesha.nfsd"

// Daemon describes one ganesha.nfsd: how to start it and where its pidfile is.
type Daemon struct {
	Binary     string   // ganesha.nfsd
	Config     string   // -f
	PIDFile    string   // -p
	LogFile    string   // -L, "" for ganesha's default
	DebugLevel string   // -N, "" for ganesha's default
	Options    []string // more arguments, as given
	Env        []string // extra environment (such as DBUS_SYSTEM_BUS_ADDRESS)
}

// Args is the command line the daemon is started with. It stays in the
// foreground (-F) of a session of its own, so that its pid is known at once
// and an early exit is seen with its status.
func (d *Daemon) Args() []string {
	args := []string{"-F", "-f", d.Config, "-p", d.PIDFile}
	if d.LogFile != "" {
		args = append(args, "-L", d.LogFile)
	}
	if d.DebugLevel != "" {
		args = append(args, "-N", d.DebugLevel)
	}
	return append(args, d.Options...)
}

// PID returns the pid in the pidfile when that process is this daemon's
// binary; 0 when the pidfile is missing, empty or stale.
func (d *Daemon) PID() (int, error) {
	b, err := os.ReadFile(d.PIDFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pidfile %s: %w", d.PIDFile, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%w: %s holds %q", ErrBadPidfile, d.PIDFile, s)
	}
	if !d.Alive(pid) {
		return 0, nil
	}
	return pid, nil
}

// Alive reports whether pid is alive (not a zombie) and runs this binary.
func (d *Daemon) Alive(pid int) bool {
	if !proc.Alive(pid) {
		return false
	}
	want := filepath.Base(d.Binary)
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		exe = strings.TrimSuffix(exe, " (deleted)") // upgraded under it
		if exe == d.Binary || filepath.Base(exe) == want {
			return true
		}
		if res, err := filepath.EvalSymlinks(d.Binary); err == nil && res == exe {
			return true
		}
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	c := strings.TrimSpace(string(comm))
	return c != "" && strings.HasPrefix(want, c) // comm is cut at 15 bytes
}

// StartError is a daemon that did not come up; Log holds the last serious
// lines of its log file, when there are any.
type StartError struct {
	Err error
	Log string
}

func (e *StartError) Error() string {
	if e.Log != "" {
		return e.Err.Error() + "; its log says: " + e.Log
	}
	return e.Err.Error()
}

func (e *StartError) Unwrap() error { return e.Err }

// Start launches the daemon and waits, until ctx ends, for ready (called
// every 100 ms with the new pid) to succeed. If the daemon exits, or is not
// ready by the deadline, it is killed and the error says why.
func (d *Daemon) Start(ctx context.Context, ready func(ctx context.Context, pid int) error) (int, error) {
	if err := os.MkdirAll(filepath.Dir(d.PIDFile), 0o755); err != nil {
		return 0, err
	}
	cmd := exec.Command(d.Binary, d.Args()...)
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the agent's process group
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cannot run %s: %w", d.Binary, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exit status 0")
			}
			return 0, &StartError{Err: fmt.Errorf("%s exited during start (%v)", d.Binary, err), Log: d.logTail()}
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exited
			err := fmt.Errorf("%s (pid %d) did not become ready before the deadline", d.Binary, pid)
			if last != nil {
				err = fmt.Errorf("%w: %v", err, last)
			}
			return 0, &StartError{Err: err, Log: d.logTail()}
		case <-tick.C:
			err := ready(ctx, pid)
			if err == nil {
				return pid, nil
			}
			// A probe cut short by the deadline says nothing about the
			// daemon: keep the reason the last complete probe gave.
			if ctx.Err() == nil || last == nil {
				last = err
			}
		}
	}
}

// logTail returns the last CRIT/FATAL/MAJ lines of the log file (at most 3).
func (d *Daemon) logTail() string {
	if d.LogFile == "" || strings.EqualFold(d.LogFile, "SYSLOG") || strings.HasPrefix(d.LogFile, "/dev/") {
		return ""
	}
	f, err := os.Open(d.LogFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 64<<10 {
		f.Seek(st.Size()-64<<10, 0)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, ":CRIT :") || strings.Contains(l, ":FATAL :") || strings.Contains(l, ":MAJ :") {
			if i := strings.Index(l, "]"); i > 0 { // drop date, host and thread
				l = strings.TrimSpace(l[i+1:])
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// Stop ends the daemon named by the pidfile: SIGTERM, then SIGKILL when it
// has not gone by the time only a little of ctx is left. A pidfile naming
// no ganesha process is stale and is removed. It returns the pid stopped
// (0 if none was running).
func (d *Daemon) Stop(ctx context.Context) (int, error) {
	pid, err := d.PID()
	if err != nil && !errors.Is(err, ErrBadPidfile) {
		return 0, err
	}
	if pid == 0 {
		os.Remove(d.PIDFile)
		return 0, nil
	}
	sig, err := proc.Stop(ctx, pid, d.Alive)
	if err != nil {
		return pid, err
	}
	os.Remove(d.PIDFile)
	if sig == syscall.SIGKILL {
		return pid, fmt.Errorf("%w (pid %d)", ErrKilled, pid)
	}
	return pid, nil
}

// ErrKilled marks a stop that needed SIGKILL: the daemon is gone, but it
// ignored SIGTERM until the deadline came close.
var ErrKilled = errors.New("ganesha.nfsd ignored SIGTERM and was killed")
