package ctdb

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Node is one row of "ctdb -X nodestatus" (or "ctdb -X status"): a node's
// pnn, address and flags.
type Node struct {
	PNN             int
	Addr            string
	Disconnected    bool
	Unknown         bool
	Banned          bool
	Disabled        bool
	Unhealthy       bool
	Stopped         bool
	Inactive        bool
	PartiallyOnline bool
	This            bool // the node the tool ran on
}

// Healthy reports whether the node serves: connected, not banned, stopped,
// unhealthy or inactive. A node the admin disabled is healthy (it still
// serves its databases; it only hosts no public addresses).
func (n Node) Healthy() bool {
	return !n.Disconnected && !n.Unknown && !n.Banned && !n.Unhealthy && !n.Stopped && !n.Inactive
}

// State is the node's state as "ctdb status" words it: OK, DISABLED, or
// the bad flags joined by "|" (such as "BANNED|INACTIVE").
func (n Node) State() string {
	var s []string
	add := func(b bool, name string) {
		if b {
			s = append(s, name)
		}
	}
	add(n.Disconnected, "DISCONNECTED")
	add(n.Unknown, "UNKNOWN")
	add(n.Banned, "BANNED")
	add(n.Disabled, "DISABLED")
	add(n.Unhealthy, "UNHEALTHY")
	add(n.Stopped, "STOPPED")
	add(n.Inactive, "INACTIVE")
	add(n.PartiallyOnline, "PARTIALLYONLINE")
	if len(s) == 0 {
		return "OK"
	}
	return strings.Join(s, "|")
}

// table reads ctdb's machine-readable output: "|a|b|c|" rows, the first of
// which is the header when header is true.
func table(out []byte) [][]string {
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
			continue
		}
		rows = append(rows, strings.Split(line[1:len(line)-1], "|"))
	}
	return rows
}

// ParseNodes reads the output of "ctdb -X nodestatus" or "ctdb -X status":
// a header row naming the columns, then one row per node. Columns are
// found by name, so releases that add or lack a column (older ones have no
// "Unknown") parse alike.
func ParseNodes(out []byte) ([]Node, error) {
	rows := table(out)
	if len(rows) < 2 {
		return nil, fmt.Errorf("no node rows in ctdb output %q", clip(out))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(h)] = i
	}
	for _, need := range []string{"node", "ip"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("ctdb output has no %q column: %q", need, clip(out))
		}
	}
	var nodes []Node
	for _, r := range rows[1:] {
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(r) {
				return r[i]
			}
			return ""
		}
		flag := func(name string) bool { return get(name) == "1" }
		pnn, err := strconv.Atoi(get("node"))
		if err != nil {
			return nil, fmt.Errorf("bad node number %q in ctdb output", get("node"))
		}
		nodes = append(nodes, Node{
			PNN: pnn, Addr: get("ip"),
			Disconnected: flag("disconnected"), Unknown: flag("unknown"), Banned: flag("banned"),
			Disabled: flag("disabled"), Unhealthy: flag("unhealthy"), Stopped: flag("stopped"),
			Inactive: flag("inactive"), PartiallyOnline: flag("partiallyonline"),
			This: get("thisnode") == "Y",
		})
	}
	return nodes, nil
}

// ThisNode returns the row marked as the node the tool ran on.
func ThisNode(nodes []Node) (Node, error) {
	for _, n := range nodes {
		if n.This {
			return n, nil
		}
	}
	if len(nodes) == 1 { // "ctdb -X nodestatus" of one node
		return nodes[0], nil
	}
	return Node{}, fmt.Errorf("no row of ctdb's node list is this node")
}

// UnknownPNN is the pnn ctdb reports when there is no leader.
const UnknownPNN = -1

// ParseLeader reads "ctdb leader" (or "ctdb recmaster"): a pnn, or
// UNKNOWN when there is no leader.
func ParseLeader(out []byte) (int, error) {
	s := strings.TrimSpace(string(out))
	if strings.EqualFold(s, "UNKNOWN") || s == "4294967295" {
		return UnknownPNN, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("unexpected leader output %q", clip(out))
	}
	return n, nil
}

// versionRE is compiled on first use: every agent invocation (and a monitor
// runs every few seconds) would otherwise pay for it at start-up.
var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`) })

// Version is a CTDB release number.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads "ctdb version" ("4.17.12-Debian", "CTDB version: 4.9.5").
func ParseVersion(out []byte) (Version, error) {
	m := versionRE().FindStringSubmatch(string(out))
	if m == nil {
		return Version{}, fmt.Errorf("no version number in %q", clip(out))
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Naming is how a CTDB release names the leader role and its settings.
type Naming struct {
	// Leader is true for 4.16 and later: "leader" commands, [cluster]
	// "leader capability" and "cluster lock"; false for the older
	// "recmaster" commands, [legacy] "recmaster capability" and
	// "recovery lock".
	Leader bool
}

// NamingFor returns the naming of a release.
func NamingFor(v Version) Naming {
	return Naming{Leader: v.AtLeast(4, 16)}
}

// NamingFromUsage reads the command list the ctdb tool prints without
// arguments: a tool with a "leader" command uses the leader names.
func NamingFromUsage(out []byte, v Version) Naming {
	n := NamingFor(v)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "leader", "setleaderrole":
			n.Leader = true
		case "recmaster", "setrecmasterrole":
			n.Leader = false
		}
	}
	return n
}

// LeaderCommand is the tool command that prints the leader's pnn.
func (n Naming) LeaderCommand() string {
	if n.Leader {
		return "leader"
	}
	return "recmaster"
}

// RoleCommand is the tool command that sets this node's leader capability.
func (n Naming) RoleCommand() string {
	if n.Leader {
		return "setleaderrole"
	}
	return "setrecmasterrole"
}

// CapabilityKey is where ctdb.conf sets whether this node may lead.
func (n Naming) CapabilityKey() (section, key string) {
	if n.Leader {
		return "cluster", "leader capability"
	}
	return "legacy", "recmaster capability"
}

// LockKey is where ctdb.conf sets the cluster lock.
func (n Naming) LockKey() (section, key string) {
	if n.Leader {
		return "cluster", "cluster lock"
	}
	return "cluster", "recovery lock"
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// ScriptStatus is what "ctdb scriptstatus" says of the last monitor event.
type ScriptStatus struct {
	NeverRun bool     // the monitor event has not run yet (the node is starting)
	Failed   []string // "NAME STATUS: output" of each failed script
}

// ParseScriptStatus reads "ctdb scriptstatus" (ctdb event status legacy
// monitor): one "NAME STATUS [DURATION DATE]" line per script, followed
// by "  OUTPUT: ..." for a failed one.
func ParseScriptStatus(out []byte) ScriptStatus {
	var s ScriptStatus
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		switch {
		case strings.Contains(t, "has never run"):
			s.NeverRun = true
		case strings.HasPrefix(t, "OUTPUT:"):
			if n := len(s.Failed); n > 0 {
				if o := strings.TrimSpace(strings.TrimPrefix(t, "OUTPUT:")); o != "" {
					s.Failed[n-1] += ": " + o
				}
			}
		default:
			f := strings.Fields(t)
			if len(f) >= 2 && (f[1] == "ERROR" || f[1] == "TIMEDOUT" || f[1] == "CANNOT") {
				st := f[1]
				if st == "CANNOT" {
					st = "CANNOT RUN"
				}
				s.Failed = append(s.Failed, f[0]+" "+st)
			}
		}
	}
	return s
}
