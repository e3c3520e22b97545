package ctdb

import (
	"os"
	"path/filepath"
	"testing"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Outputs captured from ctdb 4.17.12 on a 3-node cluster (and, for 4.9,
// written after its source), read into the node this monitor is about.
func TestParseNodeStatus(t *testing.T) {
	for _, tc := range []struct {
		file    string
		pnn     int
		healthy bool
		state   string
	}{
		{"nodestatus-ok.txt", 0, true, "OK"},
		{"nodestatus-disabled.txt", 2, true, "DISABLED"},
		{"nodestatus-banned.txt", 2, false, "BANNED|INACTIVE"},
		{"nodestatus-unhealthy.txt", 0, false, "UNHEALTHY"},
		{"nodestatus-4.9.txt", 1, false, "UNHEALTHY"}, // no "Unknown" column
		{"status-ok.txt", 0, true, "OK"},
		{"status-one-disabled.txt", 0, true, "OK"},
	} {
		nodes, err := ParseNodes(testdata(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		n, err := ThisNode(nodes)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if n.PNN != tc.pnn || n.Healthy() != tc.healthy || n.State() != tc.state {
			t.Errorf("%s: pnn %d healthy %v state %s, want %d %v %s", tc.file, n.PNN, n.Healthy(), n.State(), tc.pnn, tc.healthy, tc.state)
		}
	}
	nodes, _ := ParseNodes(testdata(t, "status-one-disabled.txt"))
	if len(nodes) != 3 || !nodes[2].Disabled || nodes[2].This || nodes[2].Addr != "198.51.100.13" {
		t.Errorf("status rows: %+v", nodes)
	}
	for _, bad := range []string{"", "connect() failed, errno=111\n", "|Node|IP|\n", "|Node|IP|\n|x|1.2.3.4|\n"} {
		if _, err := ParseNodes([]byte(bad)); err == nil {
			t.Errorf("ParseNodes(%q) succeeded", bad)
		}
	}
}

func TestParseLeader(t *testing.T) {
	if l, err := ParseLeader(testdata(t, "leader.txt")); err != nil || l != 1 {
		t.Errorf("leader %d %v", l, err)
	}
	for _, s := range []string{"UNKNOWN\n", "4294967295\n"} {
		if l, err := ParseLeader([]byte(s)); err != nil || l != UnknownPNN {
			t.Errorf("ParseLeader(%q) = %d %v", s, l, err)
		}
	}
	if _, err := ParseLeader([]byte("Error getting leader\n")); err == nil {
		t.Error("garbage leader accepted")
	}
}

func TestNamingDetection(t *testing.T) {
	v, err := ParseVersion(testdata(t, "version-4.17.txt"))
	if err != nil || v != (Version{4, 17, 12}) {
		t.Fatalf("version %v %v", v, err)
	}
	n := NamingFromUsage(testdata(t, "usage-4.17.txt"), v)
	if !n.Leader || n.LeaderCommand() != "leader" || n.RoleCommand() != "setleaderrole" {
		t.Errorf("4.17 naming %+v", n)
	}
	if s, k := n.CapabilityKey(); s != "cluster" || k != "leader capability" {
		t.Errorf("4.17 capability key %s/%s", s, k)
	}
	if _, k := n.LockKey(); k != "cluster lock" {
		t.Errorf("4.17 lock key %s", k)
	}
	v9, _ := ParseVersion(testdata(t, "version-4.9.txt"))
	o := NamingFromUsage(testdata(t, "usage-4.9.txt"), v9)
	if o.Leader || o.LeaderCommand() != "recmaster" || o.RoleCommand() != "setrecmasterrole" {
		t.Errorf("4.9 naming %+v", o)
	}
	if s, k := o.CapabilityKey(); s != "legacy" || k != "recmaster capability" {
		t.Errorf("4.9 capability key %s/%s", s, k)
	}
	if _, k := o.LockKey(); k != "recovery lock" {
		t.Errorf("4.9 lock key %s", k)
	}
	// The version alone decides when the usage says nothing.
	if !NamingFromUsage(nil, Version{4, 16, 0}).Leader || NamingFromUsage(nil, Version{4, 15, 9}).Leader {
		t.Error("naming by version")
	}
}

func TestParseScriptStatus(t *testing.T) {
	if s := ParseScriptStatus(testdata(t, "scriptstatus-ok.txt")); s.NeverRun || len(s.Failed) != 0 {
		t.Errorf("ok: %+v", s)
	}
	if s := ParseScriptStatus(testdata(t, "scriptstatus-neverrun.txt")); !s.NeverRun {
		t.Errorf("never run: %+v", s)
	}
	if s := ParseScriptStatus(testdata(t, "scriptstatus-error.txt")); len(s.Failed) != 1 || s.Failed[0] != "50.samba ERROR: samba not listening on TCP port 445" {
		t.Errorf("error: %+v", s)
	}
	if s := ParseScriptStatus(testdata(t, "scriptstatus-timedout.txt")); len(s.Failed) != 1 || s.Failed[0] != "50.samba TIMEDOUT" {
		t.Errorf("timed out: %+v", s)
	}
}
