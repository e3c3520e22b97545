package lab

import (
	"os/exec"
	"testing"
)

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
