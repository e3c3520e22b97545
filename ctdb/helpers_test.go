package ctdb

import (
	"context"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A killed ctdbd leaves "ctdb-eventd -P <pid>" behind for a moment; Stop
// ends it (by pid), and only it.
func TestEndHelpersOfDeadDaemon(t *testing.T) {
	start := func(parent string) *exec.Cmd {
		// A shell that looks like ctdb-eventd in /proc/<pid>/cmdline.
		c := &exec.Cmd{Path: "/bin/sh", Args: []string{"ctdb-eventd", "-c", "sleep 30; :", "-P", parent}}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	ours, other := start("424242"), start("434343")
	if got := helpersOf(424242); !slices.Equal(got, []int{ours.Process.Pid}) {
		t.Fatalf("helpersOf(424242) = %v, want [%d]", got, ours.Process.Pid)
	}
	done := make(chan error, 1)
	go func() { done <- ours.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	(&Daemon{}).endHelpers(ctx, 424242)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the dead daemon's event daemon is still running")
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("endHelpers took %v, beyond its context", d)
	}
	if len(helpersOf(434343)) != 1 || other.ProcessState != nil {
		t.Error("another daemon's event daemon was touched")
	}
}

// A helper's child that bears the helper's command line (an event script
// caught between fork and exec) is not a helper of its own.
func TestHelpersOfSkipsTheirChildren(t *testing.T) {
	script := `exec -a ctdb-eventd /bin/sh -c "sleep 30; :" x -P 454545 & wait`
	c := &exec.Cmd{Path: "/bin/bash", Args: []string{"ctdb-eventd", "-c", script, "-P", "454545"}}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range matchHelpers(454545) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		c.Process.Kill()
		c.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for len(matchHelpers(454545)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the helper's child never appeared: %v", matchHelpers(454545))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := helpersOf(454545); !slices.Equal(got, []int{c.Process.Pid}) {
		t.Fatalf("helpersOf = %v, want [%d] (matching: %v)", got, c.Process.Pid, matchHelpers(454545))
	}
}
