package lab

import (
	"os/exec"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/proc"
)

// waitExec waits until /proc shows cmd's own command line: Start returns
// once the child is committed to exec, but its cmdline can read empty (the
// new program's arguments not yet set up) for a moment after.
func waitExec(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !proc.Runs(cmd.Process.Pid, cmd.Args) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d does not show %q", cmd.Process.Pid, cmd.Args)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNSOfOtherLab: a recorded PID namespace whose init is now another
// lab's node (the kernel reused the inode number) is not this lab's
// leftover; one whose init is this lab's node, or no lab's process, is.
func TestNSOfOtherLab(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	cmd.Args[0] = "storhaug-lab-init:other:n1"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitExec(t, cmd)
	procs := []Proc{{HostPid: cmd.Process.Pid, Pid: 1, Comm: "sleep"}}
	if !nsOfOtherLab(procs, "mine") {
		t.Error("a namespace whose init is lab other's n1 was taken for lab mine's")
	}
	if nsOfOtherLab(procs, "other") {
		t.Error("lab other's own namespace was taken for another lab's")
	}
	if nsOfOtherLab([]Proc{{HostPid: cmd.Process.Pid, Pid: 7, Comm: "sleep"}}, "mine") {
		t.Error("a process that is not the namespace's init decided whose namespace it is")
	}
}
