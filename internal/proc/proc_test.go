package proc

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary runs as a helper when spawned with this variable.
const helperEnv = "STORHAUG_PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start runs a child that the test reaps; its pid is alive until it exits.
func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestReadStatAndAlive(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil || s.PPID != os.Getppid() || s.State == 'Z' {
		t.Errorf("own stat %+v %v", s, err)
	}
	cmd := start(t, "sleep", "60")
	pid := cmd.Process.Pid
	waitFor(t, func() bool { return Runs(pid, []string{"sleep", "60"}) }) // its exec
	if s, _ := ReadStat(pid); s.Comm != "sleep" || s.PPID != os.Getpid() {
		t.Errorf("sleep's stat %+v", s)
	}
	if !Alive(pid) || !Runs(pid, []string{"sleep", "60"}) || Runs(pid, []string{"sleep"}) || Runs(pid, []string{"sleep", "60", "x"}) {
		t.Error("Alive/Runs of a running sleep")
	}
	cmd.Process.Kill()
	// Not yet reaped: a zombie, which is not alive.
	if !WaitGone(context.Background(), pid, Alive) {
		t.Fatal("killed child still alive")
	}
	if Alive(0) || Alive(-1) {
		t.Error("pid 0 or -1 alive")
	}
}

// TestReadStatTimes checks the CPU and start times against the kernel's
// other accounts of them: getrusage(2) and the boot time in /proc/stat.
func TestReadStatTimes(t *testing.T) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for x := 0; cpu() < 150*time.Millisecond; x++ {
		_ = x * x
	}
	s, err := ReadStat(os.Getpid())
	ru := cpu()
	if err != nil {
		t.Fatal(err)
	}
	// USER_HZ is 100; the two accounts round differently.
	if got := time.Duration(s.UTime+s.STime) * 10 * time.Millisecond; got < ru-50*time.Millisecond || got > ru+50*time.Millisecond {
		t.Errorf("utime+stime %v (%+v), getrusage %v", got, s, ru)
	}

	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	var btime int64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	before := time.Now()
	cmd := start(t, "sleep", "60")
	c, err := ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// btime is in whole seconds (and drifts with clock adjustments).
	started := time.Unix(btime, 0).Add(time.Duration(c.Start) * 10 * time.Millisecond)
	if d := started.Sub(before); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("child started at %v by its Start %d, launched at %v", started, c.Start, before)
	}
	if own, _ := ReadStat(os.Getpid()); own.Start == 0 || own.Start > c.Start {
		t.Errorf("own Start %d, child's %d", own.Start, c.Start)
	}
}

func TestStopEscalates(t *testing.T) {
	term := start(t, "sleep", "60")
	waitFor(t, func() bool { return Runs(term.Process.Pid, []string{"sleep", "60"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if sig, err := Stop(ctx, term.Process.Pid, Alive); sig != syscall.SIGTERM || err != nil {
		t.Errorf("stopping sleep: %v %v", sig, err)
	}
	// A process ignoring SIGTERM is killed when the reserve is reached.
	deaf := start(t, "sh", "-c", `trap "" TERM; exec sleep 60`)
	waitFor(t, func() bool { return Runs(deaf.Process.Pid, []string{"sleep", "60"}) })
	ctx, cancel = context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if sig, err := Stop(ctx, deaf.Process.Pid, Alive); sig != syscall.SIGKILL || err != nil {
		t.Errorf("stopping a process deaf to SIGTERM: %v %v", sig, err)
	}
	if d := time.Since(t0); d > 800*time.Millisecond {
		t.Errorf("stop took %v, past its deadline", d)
	}
	if sig, err := Stop(ctx, deaf.Process.Pid, Alive); sig != 0 || err != nil {
		t.Errorf("stopping what is gone: %v %v", sig, err)
	}
}

func TestSpawnDetached(t *testing.T) {
	args := []string{"proc-test-helper", filepath.Base(t.Name())}
	reexecTestBinary = true // TestMain is the helper
	defer func() { reexecTestBinary = false }()
	pid, err := Spawn(Helper{Args: args, Env: append(os.Environ(), helperEnv+"=1"), Nice: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitFor(t, func() bool { return Runs(pid, args) })
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("helper in session %d, not its own", sid)
	}
	if p, _ := syscall.Getpriority(syscall.PRIO_PROCESS, pid); 20-p != 5 {
		t.Errorf("helper's nice value %d", 20-p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sig, err := Stop(ctx, pid, func(p int) bool { return Runs(p, args) }); sig != syscall.SIGTERM || err != nil {
		t.Errorf("stop: %v %v", sig, err)
	}
}

func TestReadPidfile(t *testing.T) {
	dir := t.TempDir()
	if pid, err := ReadPidfile(filepath.Join(dir, "none")); pid != 0 || err != nil {
		t.Errorf("missing: %d %v", pid, err)
	}
	p := filepath.Join(dir, "p")
	os.WriteFile(p, []byte("123\n"), 0o644)
	if pid, err := ReadPidfile(p); pid != 123 || err != nil {
		t.Errorf("123: %d %v", pid, err)
	}
	os.WriteFile(p, []byte("x\n"), 0o644)
	if _, err := ReadPidfile(p); err == nil {
		t.Error("no error for a pidfile without a pid")
	}
}

// waitFor polls cond (a process's exec, which nothing signals) for at
// most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10 s")
		case <-tick.C:
		}
	}
}

// TestSpawnRefusesTestBinary: the test binary itself is never re-executed
// (it would run its tests again, and a test reaching Spawn would fork
// without end).
func TestSpawnRefusesTestBinary(t *testing.T) {
	pid, err := Spawn(Helper{Args: []string{"proc-test-helper", "never"}, Env: []string{}})
	if err == nil {
		t.Fatalf("Spawn re-executed the test binary (pid %d)", pid)
	}
	if !strings.Contains(err.Error(), ".test") {
		t.Errorf("error %q does not name the test binary", err)
	}
}
