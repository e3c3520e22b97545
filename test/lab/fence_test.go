package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFenced answers the agent's requests like the lab's fence daemon, for
// a lab whose n2 is off, and records them.
func fakeFenced(t *testing.T) (string, *[]FenceRequest) {
	sock := filepath.Join(t.TempDir(), "fence.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var got []FenceRequest
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadBytes('\n')
			var req FenceRequest
			json.Unmarshal(line, &req)
			got = append(got, req)
			rep := FenceReply{OK: true}
			switch {
			case req.Action == "list":
				rep.Nodes = []string{"n1", "n2"}
			case req.Node == "n9":
				rep = FenceReply{Error: `no node "n9"`}
			case req.Action == "status" && req.Node == "n2":
				rep.Power = "off"
			case req.Action == "status":
				rep.Power = "on"
			}
			b, _ := json.Marshal(rep)
			c.Write(append(b, '\n'))
			c.Close()
		}
	}()
	return sock, &got
}

func runAgent(args []string, stdin string) (int, string, string) {
	var out, errb bytes.Buffer
	code := fenceAgentMain(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestFenceAgentStdin(t *testing.T) {
	sock, got := fakeFenced(t)
	// What Pacemaker's fencer writes: the device's parameters, the action,
	// the target as port (or plug), the local node as nodename.
	in := "action=off\nport=n2\nnodename=n1\nsocket=" + sock + "\npcmk_host_list=n1 n2\n"
	if code, out, errs := runAgent(nil, in); code != 0 || !strings.Contains(out, "Powered OFF") {
		t.Fatalf("off: exit %d, %q %q", code, out, errs)
	}
	if len(*got) != 1 || (*got)[0] != (FenceRequest{Action: "off", Node: "n2"}) {
		t.Fatalf("daemon got %+v, want off n2 (never the local nodename)", *got)
	}
	// fence-agents' status codes: 0 on, 2 off
	if code, out, _ := runAgent(nil, "action=status\nplug=n2\nsocket="+sock+"\n"); code != 2 || !strings.Contains(out, "OFF") {
		t.Errorf("status of an off node: exit %d %q, want 2", code, out)
	}
	if code, _, _ := runAgent(nil, "action=status\nplug=n1\nsocket="+sock+"\n"); code != 0 {
		t.Errorf("status of an on node: exit %d, want 0", code)
	}
	// the default action is reboot
	if code, _, _ := runAgent(nil, "plug=n1\nsocket="+sock+"\n"); code != 0 || (*got)[len(*got)-1].Action != "reboot" {
		t.Errorf("default action: exit %d, request %+v", code, (*got)[len(*got)-1])
	}
	if code, _, errs := runAgent(nil, "action=off\nplug=n9\nsocket="+sock+"\n"); code != 1 || !strings.Contains(errs, "n9") {
		t.Errorf("unknown node: exit %d %q, want 1 naming it", code, errs)
	}
	if code, _, errs := runAgent(nil, "action=off\nsocket="+sock+"\n"); code != 1 || !strings.Contains(errs, "plug") {
		t.Errorf("no target: exit %d %q, want 1 naming plug", code, errs)
	}
	if code, _, errs := runAgent(nil, "action=off\nplug=n1\n"); code != 1 || !strings.Contains(errs, "socket") {
		t.Errorf("no socket: exit %d %q, want 1 naming socket", code, errs)
	}
	if code, _, errs := runAgent(nil, "action=off\nplug=n1\nsocket="+filepath.Join(t.TempDir(), "none")+"\n"); code != 1 || errs == "" {
		t.Errorf("no daemon: exit %d %q, want 1", code, errs)
	}
	if code, _, _ := runAgent(nil, "action=explode\nplug=n1\nsocket="+sock+"\n"); code != 1 {
		t.Errorf("unknown action: exit %d, want 1", code)
	}
}

func TestFenceAgentArgs(t *testing.T) {
	sock, got := fakeFenced(t)
	if code, out, errs := runAgent([]string{"-o", "list", "--socket=" + sock}, ""); code != 0 || out != "n1,n1\nn2,n2\n" {
		t.Errorf("list: exit %d %q %q", code, out, errs)
	}
	if code, out, _ := runAgent([]string{"--action", "list-status", "-s", sock}, ""); code != 0 || out != "n1,n1,ON\nn2,n2,OFF\n" {
		t.Errorf("list-status: exit %d %q", code, out)
	}
	if code, _, _ := runAgent([]string{"-o", "monitor", "-s", sock}, ""); code != 0 {
		t.Errorf("monitor: exit %d", code)
	}
	if code, _, _ := runAgent([]string{"-o", "on", "-n", "n2", "-s", sock}, ""); code != 0 || (*got)[len(*got)-1] != (FenceRequest{Action: "on", Node: "n2"}) {
		t.Errorf("on: exit %d %+v", code, *got)
	}
	if code, _, _ := runAgent([]string{"--bogus"}, ""); code != 1 {
		t.Errorf("--bogus without value: exit %d, want 1", code)
	}
}

func TestFenceAgentMetadata(t *testing.T) {
	code, out, _ := runAgent([]string{"-o", "metadata"}, "")
	if code != 0 {
		t.Fatalf("metadata: exit %d", code)
	}
	var md struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name     string `xml:"name,attr"`
			Required string `xml:"required,attr"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("metadata is not XML: %v\n%s", err, out)
	}
	if md.Name != FenceAgent {
		t.Errorf("name %q", md.Name)
	}
	params := map[string]bool{}
	for _, p := range md.Params {
		params[p.Name] = true
	}
	// Pacemaker passes the target as plug when the agent has it (else port).
	for _, want := range []string{"action", "plug", "port", "socket"} {
		if !params[want] {
			t.Errorf("no parameter %s", want)
		}
	}
	actions := map[string]bool{}
	for _, a := range md.Actions {
		actions[a.Name] = true
	}
	for _, want := range []string{"on", "off", "reboot", "status", "monitor", "list", "metadata", "validate-all"} {
		if !actions[want] {
			t.Errorf("no action %s", want)
		}
	}
	if code, out, _ := runAgent(nil, "action=metadata\n"); code != 0 || !strings.Contains(out, "<resource-agent") {
		t.Errorf("metadata on stdin: %d", code)
	}
}

// A fence daemon that outlives its lab's state (its Up died half-way, or
// the state file went) is still found by its name: Leftovers reports it and
// Sweep ends it. A process of another prefix is left alone.
func TestSweepFindsFenceDaemon(t *testing.T) {
	mine, other := "unitfx", "unitfx2"
	start := func(prefix string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.Args[0] = fencedMarker(prefix)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
		t.Cleanup(func() { cmd.Process.Kill() })
		waitExec(t, cmd)
		return cmd
	}
	d := start(mine)
	o := start(other)
	left := strings.Join(Leftovers(mine), "\n")
	if !strings.Contains(left, fencedMarker(mine)) || strings.Contains(left, fencedMarker(other)) {
		t.Fatalf("Leftovers(%s) = %q", mine, left)
	}
	if err := Sweep(mine); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(d.Process.Pid, 0, 5*time.Second); err != nil {
		t.Errorf("Sweep left the fence daemon: %v", err)
	}
	if !procAlive(o.Process.Pid, 0) {
		t.Error("Sweep killed another lab's fence daemon")
	}
	if left := Leftovers(mine); len(left) > 0 {
		t.Errorf("after Sweep: %v", left)
	}
}
