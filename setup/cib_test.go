package setup

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testConfig is the configuration conf (storhaug.conf's text) gives.
func testConfig(t testing.TB, conf string) *Config {
	t.Helper()
	s, err := Parse("test.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromSettings("test.conf", s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cfgFor makes a configuration of n nodes with one VIP each.
func cfgFor(t *testing.T, n int, deterministic bool, extra string) *Config {
	t.Helper()
	var nodes, vips []string
	for i := 1; i <= n; i++ {
		nodes = append(nodes, fmt.Sprintf("n%d", i))
		vips = append(vips, fmt.Sprintf("198.51.100.%d/24", 100+i))
	}
	conf := fmt.Sprintf("HA_CLUSTER_NODES=%q\nHA_VIPS=%q\nDETERMINISTIC_FAILOVER=%v\n%s", strings.Join(nodes, ","), strings.Join(vips, " "), deterministic, extra)
	c := testConfig(t, conf)
	c.File = "test.conf"
	return c
}

func TestPreferences(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		var storage []string
		for i := 1; i <= n; i++ {
			storage = append(storage, fmt.Sprintf("n%d", i))
		}
		prefs := Preferences(storage, storage)
		for v, p := range prefs {
			if len(p) != n {
				t.Fatalf("%d nodes: VIP %d has %d preferences", n, v, len(p))
			}
			if p[0].Node != storage[v] || p[0].Score != n*1000 {
				t.Errorf("%d nodes: VIP %d home %v, want %s with %d", n, v, p[0], storage[v], n*1000)
			}
			seen := map[string]bool{}
			for k := range p {
				seen[p[k].Node] = true
				if p[k].Score <= 0 || k > 0 && p[k].Score >= p[k-1].Score {
					t.Errorf("%d nodes: VIP %d scores %v not strictly decreasing and positive", n, v, p)
				}
			}
			if len(seen) != n {
				t.Errorf("%d nodes: VIP %d does not rank every node once: %v", n, v, p)
			}
		}
	}
	// One address per node: a failed node's goes to the next node.
	p := Preferences([]string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3"})
	want := "[[{n1 3000} {n2 2000} {n3 1000}] [{n2 3000} {n3 2000} {n1 1000}] [{n3 3000} {n1 2000} {n2 1000}]]"
	if got := fmt.Sprint(p); got != want {
		t.Errorf("3 nodes: %s, want %s", got, want)
	}
	// 4 on 3 nodes: n1's two go to n2 and n3, n2's to n3 (which has one,
	// n1 two), n3's to n2.
	p = Preferences([]string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n1"})
	want = "[[{n1 3000} {n2 2000} {n3 1000}] [{n2 3000} {n3 2000} {n1 1000}] [{n3 3000} {n2 2000} {n1 1000}] [{n1 3000} {n3 2000} {n2 1000}]]"
	if got := fmt.Sprint(p); got != want {
		t.Errorf("4 VIPs on 3 nodes: %s, want %s", got, want)
	}
	// More VIPs than nodes: homes repeat in turn.
	c := cfgFor(t, 2, true, "")
	c.VIPs = append(c.VIPs, c.VIPs[0])
	if h := c.Homes(); fmt.Sprint(h) != "[n1 n2 n1]" {
		t.Errorf("homes of 3 VIPs on 2 nodes: %v", h)
	}
}

// The orders Preferences computes spread the addresses of any one failed
// node as evenly as those that stay allow, for 2 to 8 storage nodes and 1
// to 16 addresses, homes in turn or drawn at random (the crm_simulate test
// shows that Pacemaker follows the orders; this one covers more cases than
// it can in the time).
func TestPreferencesSpread(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := 2; n <= 8; n++ {
		var storage []string
		for i := 1; i <= n; i++ {
			storage = append(storage, fmt.Sprintf("n%d", i))
		}
		for v := 1; v <= 16; v++ {
			for trial := 0; trial < 4; trial++ {
				homes := make([]string, v)
				for i := range homes {
					if trial == 0 {
						homes[i] = storage[i%n]
					} else {
						homes[i] = storage[rnd.IntN(n)]
					}
				}
				prefs := Preferences(storage, homes)
				for _, down := range storage {
					where := make([]string, v)
					count := map[string]int{}
					for i, p := range prefs {
						for _, c := range p {
							if c.Node != down {
								where[i] = c.Node
								break
							}
						}
						count[where[i]]++
					}
					least := v
					for _, s := range storage {
						if s != down {
							least = min(least, count[s])
						}
					}
					for i := range where {
						if homes[i] == down && count[where[i]] > least+1 {
							t.Errorf("storage %v, homes %v: %s fails, VIP %d goes to %s, which then serves %d, another survivor %d",
								storage, homes, down, i, where[i], count[where[i]], least)
						}
					}
				}
			}
		}
	}
}

func TestBuildGolden(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		for _, det := range []bool{false, true} {
			name := fmt.Sprintf("cib/%dnodes-det%v.xml", n, det)
			t.Run(name, func(t *testing.T) {
				m := Build(cfgFor(t, n, det, ""), Options{})
				checkModel(t, m, n)
				golden(t, name, m.XML())
			})
		}
	}
	t.Run("variants", func(t *testing.T) {
		c := cfgFor(t, 3, false, "STORAGE_NODES=n1,n2\nHA_VIPS='198.51.100.101 2001:db8::7/64'\nHA_SMB_MANAGER=systemd\nHA_CTDB_MODE=lock\nHA_NFS_TYPE=glusterfs\nHA_NFS_VOL=localhost:/gv0\nHA_VIP_NIC=eth1\nHA_STONITH_ENABLED=false\n")
		m := Build(c, Options{})
		golden(t, "cib/variants.xml", m.XML())
		golden(t, "cib/variants.pcs", []byte(strings.Join(m.PCS(), "\n")+"\n"))
		legacy := string(Build(cfgFor(t, 3, false, ""), Options{LegacyRoles: true}).XML())
		if !strings.Contains(legacy, `role="Master"`) || strings.Contains(legacy, `role="Promoted"`) {
			t.Error("LegacyRoles does not write role=Master")
		}
		// influence (pacemaker-3.6 and later) only where the schema knows it.
		for schema, want := range map[string]bool{"pacemaker-3.5": false, "pacemaker-3.6": true, "pacemaker-3.9": true} {
			got := strings.Contains(string(BuildFor(c, E("cib", "validate-with", schema)).XML()), `influence="false"`)
			if got != want {
				t.Errorf("schema %s: influence written %v, want %v", schema, got, want)
			}
		}
	})
}

// checkModel asserts what must hold of every model.
func checkModel(t *testing.T, m *Model, n int) {
	t.Helper()
	ids := map[string]bool{}
	top := map[string]bool{}
	for _, r := range m.Resources {
		top[r.Get("id")] = true
	}
	all := append(append([]*Element(nil), m.Resources...), m.Constraints...)
	for _, e := range all {
		e.Walk(func(x *Element) bool {
			if id := x.Get("id"); id != "" {
				if ids[id] {
					t.Errorf("id %s used twice", id)
				}
				ids[id] = true
				if !Owned(id) {
					t.Errorf("id %s is not marked as storhaug's", id)
				}
			}
			return true
		})
	}
	vips := 0
	homes := map[string]string{}
	onStorage := map[string]bool{}
	for _, r := range m.Resources {
		if r.Get("type") == "IPaddr3" {
			vips++
		}
	}
	for _, c := range m.Constraints {
		for _, a := range []string{"rsc", "with-rsc", "first", "then"} {
			if v := c.Get(a); v != "" && !top[v] {
				t.Errorf("constraint %s refers to %s, which is not a resource", c.Get("id"), v)
			}
		}
		if strings.HasSuffix(c.Get("id"), "-on-storage") && c.Get("resource-discovery") == "exclusive" {
			onStorage[c.Get("rsc")] = true
		}
		if node, score := preferredNode(c); node != "" && score == n*1000 {
			homes[c.Get("rsc")] = node
		}
	}
	if vips != n {
		t.Errorf("%d VIPs, want %d", vips, n)
	}
	for _, r := range m.Resources {
		if r.Get("type") == "IPaddr3" || r.Name == "clone" && !strings.HasSuffix(r.Get("id"), "-trigger-clone") {
			if !onStorage[r.Get("id")] {
				t.Errorf("%s is not restricted to storage nodes", r.Get("id"))
			}
		}
	}
	distinct := map[string]bool{}
	for _, h := range homes {
		distinct[h] = true
	}
	// With or without DETERMINISTIC_FAILOVER, every VIP has a home.
	if len(homes) != n || len(distinct) != n {
		t.Errorf("homes %v, want %d distinct", homes, n)
	}
	if len(m.NodeAttrs) != n {
		t.Errorf("role=storage on %d nodes, want %d", len(m.NodeAttrs), n)
	}
}

func TestVIPIDStable(t *testing.T) {
	c := cfgFor(t, 3, true, "")
	_, next, err := c.AddNode("n4", "198.51.100.104/24")
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, r := range Build(c, Options{}).Resources {
		before[r.Get("id")] = r.Canonical()
	}
	for _, r := range Build(next, Options{}).Resources {
		if r.Get("type") == "IPaddr3" {
			if old, ok := before[r.Get("id")]; ok && old != r.Canonical() {
				t.Errorf("adding a node changed VIP %s", r.Get("id"))
			}
		}
	}
}

// With a separate Samba clone in leader mode, smbd starts only after a CTDB
// instance is promoted (no CTDB node is healthy before), on every node: the
// order is promote-then-start and the Samba clone is not interleaved. In
// lock mode a plain start-then-start order is right.
func TestSambaAfterCTDBPromotion(t *testing.T) {
	for _, mode := range []string{"leader", "lock"} {
		c := cfgFor(t, 3, false, "HA_SMB_MANAGER=\"systemd\"\nHA_CTDB_MODE=\""+mode+"\"\nHA_CTDB_LOCK=\"/shared/ctdb/lock\"\n")
		m := Build(c, Options{})
		var order *Element
		for _, e := range m.Constraints {
			if e.Name == "rsc_order" && e.Get("first") == idCTDBClone && e.Get("then") == idSambaClone {
				order = e
			}
		}
		if order == nil {
			t.Fatalf("%s: no order from %s to %s", mode, idCTDBClone, idSambaClone)
		}
		interleave := ""
		for _, r := range m.Resources {
			if r.Get("id") == idSambaClone {
				r.Walk(func(e *Element) bool {
					if e.Name == "nvpair" && e.Get("name") == "interleave" {
						interleave = e.Get("value")
					}
					return true
				})
			}
		}
		wantFirst, wantInterleave := "", "true"
		if mode == "leader" {
			wantFirst, wantInterleave = "promote", "false"
		}
		if got := order.Get("first-action"); got != wantFirst {
			t.Errorf("%s: order first-action %q, want %q", mode, got, wantFirst)
		}
		if interleave != wantInterleave {
			t.Errorf("%s: Samba clone interleave %q, want %q", mode, interleave, wantInterleave)
		}
	}
}
