package ganesha_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/internal/proc"
)

// TestMain lets this test binary stand in for ganesha.nfsd: with
// GANESHATEST_DAEMON set it parses ganesha's options and behaves as asked.
func TestMain(m *testing.M) {
	if mode := os.Getenv("GANESHATEST_DAEMON"); mode != "" {
		fakeDaemon(mode, os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

func fakeDaemon(mode string, args []string) {
	var pidfile, logfile string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-p":
			pidfile = args[i+1]
		case "-L":
			logfile = args[i+1]
		}
	}
	if mode == "crash" {
		os.WriteFile(logfile, []byte("24/11/2026 07:09:58 : epoch 1 : vm : nfs-ganesha-1[main] config_errs_to_log :CONFIG :CRIT :Config File (/x.conf:3): Unknown block (FOO)\n"), 0o644)
		os.Exit(2)
	}
	os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	sig := make(chan os.Signal, 1)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sig, syscall.SIGTERM)
	}
	if mode == "serve" || mode == "stubborn" {
		conn, err := dbus.Connect(os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"))
		if err == nil {
			conn.RequestName(ganesha.BusName, dbus.NameFlagDoNotQueue)
		}
	}
	select {
	case <-sig:
		os.Remove(pidfile)
		os.Exit(0)
	case <-time.After(time.Minute):
		os.Exit(3)
	}
}

func fakeDaemonFor(t *testing.T, mode, bus string) *ganesha.Daemon {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &ganesha.Daemon{
		Binary:  exe,
		Config:  filepath.Join(dir, "ganesha.conf"),
		PIDFile: filepath.Join(dir, "run", "ganesha.pid"),
		LogFile: filepath.Join(dir, "ganesha.log"),
		Env:     []string{"GANESHATEST_DAEMON=" + mode, "DBUS_SYSTEM_BUS_ADDRESS=" + bus},
	}
}

func ready(b *ganesha.Bus) func(context.Context, int) error {
	return func(ctx context.Context, pid int) error { return b.Answers(ctx, pid) }
}

// Start returns once the daemon owns its bus name; Stop ends it by the pid
// in its pidfile.
func TestDaemonStartStop(t *testing.T) {
	addr := ganeshatest.Bus(t)
	b := connect(t, addr)
	d := fakeDaemonFor(t, "serve", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := d.Start(ctx, ready(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if got, err := d.PID(); got != pid || err != nil {
		t.Fatalf("PID() = %d, %v; want %d", got, err, pid)
	}
	if err := b.Answers(ctx, pid); err != nil {
		t.Fatalf("Answers after Start: %v", err)
	}
	stopped, err := d.Stop(ctx)
	if err != nil || stopped != pid {
		t.Fatalf("Stop = %d, %v; want %d, nil", stopped, err, pid)
	}
	if got, _ := d.PID(); got != 0 {
		t.Fatalf("PID() after Stop = %d", got)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && !deadOrZombie(pid) {
		t.Fatalf("pid %d still runs after Stop", pid)
	}
	// stop again: nothing to do
	if p, err := d.Stop(ctx); p != 0 || err != nil {
		t.Fatalf("second Stop = %d, %v", p, err)
	}
}

func deadOrZombie(pid int) bool { return !proc.Alive(pid) }

// A daemon that exits during start is reported with its log's serious lines.
func TestDaemonStartCrash(t *testing.T) {
	addr := ganeshatest.Bus(t)
	b := connect(t, addr)
	d := fakeDaemonFor(t, "crash", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.Start(ctx, ready(b))
	if err == nil {
		t.Fatal("Start of a crashing daemon succeeded")
	}
	if !strings.Contains(err.Error(), "exited during start") || !strings.Contains(err.Error(), "Unknown block (FOO)") {
		t.Fatalf("Start error %q lacks the exit and the log line", err)
	}
}

// A daemon that never registers on the bus is killed at the deadline.
func TestDaemonStartNotReady(t *testing.T) {
	addr := ganeshatest.Bus(t)
	b := connect(t, addr)
	d := fakeDaemonFor(t, "silent", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Start(ctx, ready(b))
	if err == nil || !strings.Contains(err.Error(), "did not become ready") {
		t.Fatalf("Start = %v, want a not-ready error", err)
	}
	if !errors.Is(err, ganesha.ErrNotRunning) && !strings.Contains(err.Error(), "no owner") {
		t.Errorf("Start error %q does not say why (no owner on the bus)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Start took %v past a 700ms deadline", d)
	}
}

// SIGTERM ignored: SIGKILL comes before the deadline, and Stop says so.
func TestDaemonStopStubborn(t *testing.T) {
	addr := ganeshatest.Bus(t)
	b := connect(t, addr)
	d := fakeDaemonFor(t, "stubborn", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := d.Start(ctx, ready(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	start := time.Now()
	_, err = d.Stop(sctx)
	if !errors.Is(err, ganesha.ErrKilled) {
		t.Fatalf("Stop = %v, want ErrKilled", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Stop took %v, its deadline was 2s", el)
	}
	if !deadOrZombie(pid) {
		t.Fatalf("pid %d survived", pid)
	}
}

// A pidfile naming some other process is stale: Stop must not signal it.
func TestDaemonStalePidfile(t *testing.T) {
	d := fakeDaemonFor(t, "serve", "")
	d.Binary = "/usr/bin/ganesha.nfsd"
	os.MkdirAll(filepath.Dir(d.PIDFile), 0o755)
	os.WriteFile(d.PIDFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644) // this test: not ganesha
	if pid, err := d.PID(); pid != 0 || err != nil {
		t.Fatalf("PID() of a stale pidfile = %d, %v", pid, err)
	}
	if pid, err := d.Stop(context.Background()); pid != 0 || err != nil {
		t.Fatalf("Stop with a stale pidfile = %d, %v", pid, err)
	}
	if _, err := os.Stat(d.PIDFile); !os.IsNotExist(err) {
		t.Fatal("stale pidfile left behind")
	}
	os.WriteFile(d.PIDFile, []byte("garbage"), 0o644)
	if _, err := d.PID(); !errors.Is(err, ganesha.ErrBadPidfile) {
		t.Fatalf("PID() of a pidfile with garbage = %v, want ErrBadPidfile", err)
	}
	if pid, err := d.Stop(context.Background()); pid != 0 || err != nil {
		t.Fatalf("Stop with a garbage pidfile = %d, %v", pid, err)
	}
}

func TestDaemonArgs(t *testing.T) {
	d := &ganesha.Daemon{Config: "/etc/ganesha/ganesha.conf", PIDFile: "/run/g.pid", LogFile: "/var/log/g.log",
		DebugLevel: "NIV_EVENT", Options: []string{"-E", "42"}}
	want := "-F -f /etc/ganesha/ganesha.conf -p /run/g.pid -L /var/log/g.log -N NIV_EVENT -E 42"
	if got := strings.Join(d.Args(), " "); got != want {
		t.Fatalf("Args = %q, want %q", got, want)
	}
}
