package setup

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spreadCase is one configuration of the failover matrix.
type spreadCase struct {
	name string
	conf string
}

// spreadCases: 3, 4 and 5 nodes with 2 to 8 VIPs, with and without
// DETERMINISTIC_FAILOVER, IPv4, IPv6 and both; then non-storage nodes,
// homes on a subset of the storage nodes and uneven homes.
func spreadCases() []spreadCase {
	var cs []spreadCase
	// NFS's ganesha_trigger clones (with notifications) triple the work of
	// the scheduler: a few cases have them.
	services := func(nodes, vips int) string {
		switch (nodes + vips) % 7 {
		case 0:
			return "nfs smb"
		case 3:
			return "nfs"
		}
		return "smb"
	}
	conf := func(nodes, vips int, det bool, family int, extra string) string {
		var ns, vs []string
		for i := 1; i <= nodes; i++ {
			ns = append(ns, fmt.Sprintf("n%d", i))
		}
		for i := 1; i <= vips; i++ {
			if family == 1 || family == 2 && i%2 == 0 {
				vs = append(vs, fmt.Sprintf("2001:db8::%x/64", 0x100+i))
			} else {
				vs = append(vs, fmt.Sprintf("198.51.100.%d/24", 100+i))
			}
		}
		if !strings.Contains(extra, "HA_SERVICES=") {
			extra += fmt.Sprintf("HA_SERVICES=%q\n", services(nodes, vips))
		}
		return fmt.Sprintf("HA_CLUSTER_NODES=%q\nHA_VIPS=%q\nDETERMINISTIC_FAILOVER=%v\n%s",
			strings.Join(ns, ","), strings.Join(vs, " "), det, extra)
	}
	family := []string{"ipv4", "ipv6", "mixed"}
	for n := 3; n <= 5; n++ {
		for v := 2; v <= 8; v++ {
			det := (n+v)%2 == 0
			f := v % 3
			cs = append(cs, spreadCase{fmt.Sprintf("%dnodes-%dvips-det%v-%s", n, v, det, family[f]), conf(n, v, det, f, "")})
		}
	}
	cs = append(cs,
		// The case: 4 addresses on 3 nodes; n1 serves two.
		spreadCase{"3nodes-4vips-dettrue-ipv4", conf(3, 4, true, 0, "HA_SERVICES='nfs smb'\n")},
		// n5 serves no storage: it never takes an address, and its
		// failure moves none.
		spreadCase{"5nodes-4storage-6vips-detfalse", conf(5, 6, false, 2, "STORAGE_NODES=n1,n2,n3,n4\n")},
		// Homes on n1 and n2 only: n3 and n4 take a failed node's
		// addresses first.
		spreadCase{"4nodes-homes-n1n2-dettrue", conf(4, 4, true, 1, "HA_VIP_NODES=n1,n2,n1,n2\n")},
		// Uneven homes: as even as the addresses that stay allow.
		spreadCase{"3nodes-uneven-homes-detfalse", conf(3, 5, false, 0, "HA_VIP_NODES=n1,n1,n1,n2,n1\n")},
		spreadCase{"5nodes-3storage-uneven-homes-dettrue", conf(5, 8, true, 2, "STORAGE_NODES=n1,n3,n5\nHA_VIP_NODES=n1,n1,n1,n1,n3,n3,n5,n1\nHA_SERVICES='nfs smb'\n")},
		// Non-storage nodes in smaller clusters, first, in the middle
		// and last, IPv6 and mixed, with NFS's triggers.
		spreadCase{"3nodes-2storage-3vips-ipv6-detfalse", conf(3, 3, false, 1, "STORAGE_NODES=n1,n2\nHA_SERVICES='nfs smb'\n")},
		spreadCase{"4nodes-3storage-5vips-mixed-dettrue", conf(4, 5, true, 2, "STORAGE_NODES=n1,n2,n4\n")},
		spreadCase{"4nodes-3storage-6vips-ipv6-detfalse", conf(4, 6, false, 1, "STORAGE_NODES=n2,n3,n4\nHA_SERVICES=nfs\n")},
		spreadCase{"5nodes-4storage-4vips-ipv4-dettrue", conf(5, 4, true, 0, "STORAGE_NODES=n2,n3,n4,n5\n")},
	)
	return cs
}

// A failed node's addresses spread over the storage nodes that survive as
// evenly as the addresses that stay where they are allow (max - min <= 1
// when the homes are even); no other address moves, neither when the node
// fails nor when it comes back; when it is back every address is home
// again, each ganesha_trigger with its address. Pacemaker's own scheduler
// decides (crm_simulate on a CIB that setup's model and plan build), for
// every single node failure in every configuration of spreadCases. No
// service restarts on a survivor either.
func TestFailoverSpreadsAndReturns(t *testing.T) {
	needTools(t)
	empty := fencedEmptyCIB(t)
	for _, tc := range spreadCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkSpread(t, tc.conf, empty)
		})
	}
}

// DETERMINISTIC_FAILOVER changes nothing in what setup builds: every VIP
// has a home and a failover order either way, so the crm_simulate matrix
// above, which has each configuration with one value of it, covers the
// other too.
func TestDeterministicFailoverSameCIB(t *testing.T) {
	for _, tc := range spreadCases() {
		var built [2]string
		for i, det := range []bool{false, true} {
			conf := strings.Replace(tc.conf, fmt.Sprintf("DETERMINISTIC_FAILOVER=%v", !det), fmt.Sprintf("DETERMINISTIC_FAILOVER=%v", det), 1)
			cfg := testConfig(t, conf)
			if cfg.DeterministicFailover != det {
				t.Fatalf("%s: DETERMINISTIC_FAILOVER=%v read as %v", tc.name, det, cfg.DeterministicFailover)
			}
			built[i] = string(Build(cfg, Options{}).XML())
		}
		if built[0] != built[1] {
			t.Errorf("%s: DETERMINISTIC_FAILOVER changes the CIB:\n%s\n---\n%s", tc.name, built[0], built[1])
		}
	}
}

func checkSpread(t *testing.T, conf string, empty *Element) {
	cfg := testConfig(t, conf)
	cib, _, err := Plan(empty, cfg, Build(cfg, Options{}), PlanOptions{CreateNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "setup.xml")
	if err := os.WriteFile(f, cib.XML(), 0o600); err != nil {
		t.Fatal(err)
	}
	vipOf := map[string]int{} // resource id (VIP or its trigger) -> VIP index
	for i, v := range cfg.VIPs {
		vipOf[VIPID(v.Addr)] = i
		vipOf[VIPID(v.Addr)+"-trigger"] = i
	}
	storage := map[string]bool{}
	for _, n := range cfg.StorageNodes {
		storage[n] = true
	}

	// Every node up, until the cluster has nothing more to do.
	var up []string
	for _, n := range cfg.ClusterNodes {
		up = append(up, "-u", n)
	}
	allUp, home, _ := settle(t, cfg, vipOf, f, up...)
	// Pacemaker validated the CIB against its schema; it need not again at
	// every step (that would take half the test's time).
	settled, err := os.ReadFile(allUp)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseXML(settled)
	if err != nil {
		t.Fatal(err)
	}
	e.Set("validate-with", "none")
	if err := os.WriteFile(allUp, e.XML(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Home is where each address runs with every node up: the node
	// HA_VIP_NODES gives it, else the storage nodes in turn, with or
	// without DETERMINISTIC_FAILOVER (TestDeterministicFailoverSameCIB).
	for i := range cfg.VIPs {
		if home[i] != cfg.VIPHome(i) {
			t.Fatalf("all nodes up: %s on %q, its home is %s", cfg.VIPs[i], home[i], cfg.VIPHome(i))
		}
	}
	balanced := spread(home, cfg.StorageNodes) <= 1
	if !balanced && len(cfg.VIPNodes) == 0 {
		t.Fatalf("all nodes up: the storage nodes serve %s", perNode(home, cfg.StorageNodes))
	}

	for _, down := range cfg.ClusterNodes {
		// The node fails.
		failed, after, acts := settle(t, cfg, vipOf, allUp, "--node-fail", down)
		moved := map[int]bool{}
		for i := range cfg.VIPs {
			switch {
			case home[i] == down:
				moved[i] = true
				if !storage[after[i]] || after[i] == down {
					t.Errorf("%s fails: %s went to %q, not a surviving storage node", down, cfg.VIPs[i], after[i])
				}
			case after[i] != home[i]:
				t.Errorf("%s fails: %s, which was on %s, moved to %q", down, cfg.VIPs[i], home[i], after[i])
			}
		}
		// Nothing else happens but stops on the failed node and the moves
		// of its addresses.
		for _, a := range acts {
			if !(a.Action == "stop" && a.Node == down || a.vip >= 0 && moved[a.vip] && a.Action == "move" && a.Source == down) {
				t.Errorf("%s fails: Pacemaker acts on a survivor: %s", down, a)
			}
		}
		var survivors []string
		for _, n := range cfg.StorageNodes {
			if n != down {
				survivors = append(survivors, n)
			}
		}
		count := map[string]int{}
		for _, n := range after {
			count[n]++
		}
		least := count[survivors[0]]
		for _, n := range survivors {
			least = min(least, count[n])
		}
		for i := range moved {
			if n := after[i]; count[n] > least+1 {
				t.Errorf("%s fails: %s went to %s, which now serves %d addresses, while a survivor serves %d: %s",
					down, cfg.VIPs[i], n, count[n], least, perNode(after, survivors))
			}
		}
		if balanced && len(moved) > 0 && spread(after, survivors) > 1 {
			t.Errorf("%s fails: the survivors serve %s (max - min > 1)", down, perNode(after, survivors))
		}

		// It comes back: its addresses return, nothing else moves, and
		// each returns only once its services run there (a VIP that
		// moves in the transition that starts them is down on the way
		// for as long as CTDB and ganesha take to start).
		_, back, acts := settle(t, cfg, vipOf, failed, "-u", down)
		for i := range cfg.VIPs {
			if back[i] != home[i] {
				t.Errorf("%s is back: %s on %q, its home is %s", down, cfg.VIPs[i], back[i], home[i])
			}
		}
		// Nothing else happens but starts on it and its addresses moving
		// back.
		startsThere := map[int]bool{} // transitions that start a service on it
		for _, a := range acts {
			if a.vip < 0 && a.Action == "start" && a.Node == down {
				startsThere[a.step] = true
			}
		}
		for _, a := range acts {
			if !(a.Action == "start" && a.Node == down || a.vip >= 0 && moved[a.vip] && a.Action == "move" && a.Dest == down) {
				t.Errorf("%s is back: Pacemaker acts on a survivor: %s", down, a)
			}
			if a.vip >= 0 && a.Action == "move" && startsThere[a.step] {
				t.Errorf("%s is back: %s moves home while its services start there (it is down until they run)", down, a)
			}
		}
	}
}

// fencedEmptyCIB is an empty CIB with fencing on, as in production, with a
// device of the admin's (its agent is never run): a failed node is
// fenced, and comes back with no resource history, as a rebooted node
// joins.
func fencedEmptyCIB(t *testing.T) *Element {
	t.Helper()
	empty, err := ParseXML([]byte(run(t, nil, "cibadmin", "--empty")))
	if err != nil {
		t.Fatal(err)
	}
	empty.Find("configuration", "resources").Add(E("primitive", "id", "fence", "class", "stonith", "type", "fence_dummy"))
	return empty
}

// perNode lists how many addresses each node serves.
func perNode(where map[int]string, nodes []string) string {
	count := map[string]int{}
	for _, n := range where {
		count[n]++
	}
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s:%d", n, count[n]))
	}
	return strings.Join(s, " ")
}

// spread is the most addresses a node serves minus the fewest.
func spread(where map[int]string, nodes []string) int {
	count := map[string]int{}
	for _, n := range where {
		count[n]++
	}
	lo, hi := count[nodes[0]], count[nodes[0]]
	for _, n := range nodes {
		lo, hi = min(lo, count[n]), max(hi, count[n])
	}
	return hi - lo
}

// simResult is the part of crm_simulate --output-as=xml the test reads.
type simResult struct {
	Actions []simAction `xml:"actions>rsc_action"`
	Revised struct {
		Resources []simResource `xml:"resource"`
		Clones    []struct {
			ID        string        `xml:"id,attr"`
			Resources []simResource `xml:"resource"`
		} `xml:"clone"`
	} `xml:"revised_cluster_status>resources"`
}

type simAction struct {
	Action   string `xml:"action,attr"`
	Resource string `xml:"resource,attr"`
	Node     string `xml:"node,attr"`
	Source   string `xml:"source,attr"`
	Dest     string `xml:"dest,attr"`
}

type simResource struct {
	ID     string `xml:"id,attr"`
	Active bool   `xml:"active,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// settle runs crm_simulate's transitions from the CIB file in, events in
// the first, until the cluster has nothing more to do. It returns the
// settled CIB file, where the VIPs are and every action taken on the way
// on storhaug's resources.
func settle(t *testing.T, cfg *Config, vipOf map[string]int, in string, events ...string) (string, map[int]string, []action) {
	t.Helper()
	var acts []action
	what := strings.Join(events, " ")
	// The cluster's time, when events set it, holds for every transition.
	var clock []string
	for i, e := range events {
		if e == "--set-datetime" && i+1 < len(events) {
			clock = events[i : i+2]
		}
	}
	for i := 0; i < 6; i++ {
		out := strings.TrimSuffix(in, ".xml") + fmt.Sprintf("-%s%d.xml", strings.Join(events, ""), i)
		r := simulateXML(t, in, out, events...)
		setReady(t, out, r)
		for _, a := range r.actions(vipOf) {
			a.step = i
			acts = append(acts, a)
		}
		// Settled: the next transition would change nothing (crm_simulate
		// plans it without a transition graph: its summary's actions).
		if len(simulateXML(t, out, "", clock...).Actions) == 0 {
			return out, r.placement(t, cfg, vipOf), acts
		}
		in, events = out, clock
	}
	t.Fatalf("the cluster does not settle after %s: %v", what, acts)
	return "", nil, nil
}

// setReady does what the storhaug-ready clone's agent
// (ocf:pacemaker:attribute) does, which crm_simulate does not run: the
// transient node attribute AttrReady is 1 where an instance of it runs
// after the transition, absent elsewhere.
func setReady(t *testing.T, cibFile string, r *simResult) {
	t.Helper()
	on := map[string]bool{}
	for _, c := range r.Revised.Clones {
		if c.ID != idReadyClone {
			continue
		}
		for _, rs := range c.Resources {
			if rs.Active && len(rs.Nodes) == 1 {
				on[rs.Nodes[0].Name] = true
			}
		}
	}
	setReadyOn(t, cibFile, on)
}

// setReadyOn sets AttrReady to 1 on the nodes on in the CIB file's status
// section, and removes it from the others.
func setReadyOn(t *testing.T, cibFile string, on map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(cibFile)
	if err != nil {
		t.Fatal(err)
	}
	cib, err := ParseXML(b)
	if err != nil {
		t.Fatal(err)
	}
	st := cib.Child("status")
	if st == nil {
		return
	}
	for _, ns := range st.Children {
		if ns.Name != "node_state" {
			continue
		}
		id := ns.Get("id")
		ta := ns.Child("transient_attributes")
		if ta == nil {
			ta = E("transient_attributes", "id", id)
			ns.Children = append([]*Element{ta}, ns.Children...)
		}
		ia := ta.Child("instance_attributes")
		if ia == nil {
			ia = E("instance_attributes", "id", "status-"+id)
			ta.Add(ia)
		}
		var kept []*Element
		for _, nv := range ia.Children {
			if nv.Get("name") != AttrReady {
				kept = append(kept, nv)
			}
		}
		ia.Children = kept
		if on[ns.Get("uname")] {
			ia.Add(E("nvpair", "id", "status-"+id+"-"+AttrReady, "name", AttrReady, "value", "1"))
		}
	}
	if err := os.WriteFile(cibFile, cib.XML(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// simulateXML runs one transition of crm_simulate on the CIB file in,
// saving the result in out ("": only plan it), events added first.
func simulateXML(t *testing.T, in, out string, events ...string) *simResult {
	t.Helper()
	args := []string{"-x", in, "-q", "true", "--output-as=xml"}
	if out != "" {
		args = append(args, "-S", "-O", out)
	} else {
		args = append(args, "-R")
	}
	var r simResult
	if err := xml.Unmarshal([]byte(run(t, nil, "crm_simulate", append(args, events...)...)), &r); err != nil {
		t.Fatalf("crm_simulate's XML: %v", err)
	}
	return &r
}

// placement returns the node of every VIP after the transition, checking
// that each runs on one node and its ganesha_trigger (with NFS) with it.
func (r *simResult) placement(t *testing.T, cfg *Config, vipOf map[string]int) map[int]string {
	t.Helper()
	on := func(rs simResource) string {
		if !rs.Active || len(rs.Nodes) != 1 {
			return ""
		}
		return rs.Nodes[0].Name
	}
	where := map[int]string{}
	for _, rs := range r.Revised.Resources {
		if i, ok := vipOf[rs.ID]; ok {
			where[i] = on(rs)
		}
	}
	for i, v := range cfg.VIPs {
		if where[i] == "" {
			t.Fatalf("%s runs nowhere (or on several nodes)", v)
		}
	}
	if !cfg.Has("nfs") {
		return where
	}
	trigger := map[int][]string{}
	for _, c := range r.Revised.Clones {
		for _, rs := range c.Resources {
			if i, ok := vipOf[rs.ID]; ok && on(rs) != "" {
				trigger[i] = append(trigger[i], on(rs))
			}
		}
	}
	for i, v := range cfg.VIPs {
		if fmt.Sprint(trigger[i]) != fmt.Sprint([]string{where[i]}) {
			t.Errorf("%s is on %s, its ganesha_trigger on %v", v, where[i], trigger[i])
		}
	}
	return where
}

// applied returns where the VIPs are once the transition's actions are
// carried out, from where they were.
func (r *simResult) applied(from map[int]string, cfg *Config) map[int]string {
	vip := map[string]int{}
	for i, v := range cfg.VIPs {
		vip[VIPID(v.Addr)] = i
	}
	to := map[int]string{}
	for i, n := range from {
		to[i] = n
	}
	for _, a := range r.Actions {
		i, ok := vip[a.Resource]
		if !ok {
			continue
		}
		switch a.Action {
		case "start":
			to[i] = a.Node
		case "move":
			to[i] = a.Dest
		case "stop":
			to[i] = ""
		}
	}
	return to
}

// action is an action of a transition on one of storhaug's resources.
type action struct {
	vip  int // the VIP it is, or whose trigger it is; -1: neither
	step int // the transition of settle it belongs to
	simAction
}

func (a action) String() string {
	s := a.Action + " " + a.Resource
	if a.Node != "" {
		s += " on " + a.Node
	}
	if a.Source != "" || a.Dest != "" {
		s += " " + a.Source + " -> " + a.Dest
	}
	return s
}

// actions returns the transition's actions on storhaug's resources.
func (r *simResult) actions(vipOf map[string]int) []action {
	var out []action
	for _, a := range r.Actions {
		id, _, _ := strings.Cut(a.Resource, ":") // a clone instance: id:N
		if !Owned(id) {
			continue
		}
		i, ok := vipOf[id]
		if !ok {
			i = -1
		}
		out = append(out, action{vip: i, simAction: a})
	}
	return out
}
