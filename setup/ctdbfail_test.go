package setup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// When CTDB fails on the node that holds an address (ctdbd killed, smbd
// dead and the node UNHEALTHY), the address leaves that node in the very
// transition that stops CTDB there: it does not wait for CTDB to start
// again on the failed node (ctdbd's restart and recovery take tens of
// seconds, while SMB clients of the address get nothing), and it comes
// home only once CTDB runs there again. Pacemaker's own scheduler
// (crm_simulate) plans the transitions on the CIB setup builds.
func TestCTDBFailureMovesAddressAtOnce(t *testing.T) {
	needTools(t)
	conf := "HA_CLUSTER_NODES=\"n1,n2,n3\"\nHA_SERVICES=\"nfs smb\"\n" +
		"HA_VIPS=\"198.51.100.201/24 198.51.100.202/24 198.51.100.203/24\"\n"
	cfg := testConfig(t, conf)
	cib, _, err := Plan(fencedEmptyCIB(t), cfg, Build(cfg, Options{}), PlanOptions{CreateNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "setup.xml")
	if err := os.WriteFile(f, cib.XML(), 0o600); err != nil {
		t.Fatal(err)
	}
	vipOf := map[string]int{}
	for i, v := range cfg.VIPs {
		vipOf[VIPID(v.Addr)] = i
		vipOf[VIPID(v.Addr)+"-trigger"] = i
	}
	allUp, home, _ := settle(t, cfg, vipOf, f, "-u", "n1", "-u", "n2", "-u", "n3")
	const failed = "n3"
	v := -1
	for i, n := range home {
		if n == failed {
			v = i
		}
	}
	if v < 0 {
		t.Fatalf("no address on %s: %v", failed, home)
	}

	// CTDB's monitor fails on n3.
	out := filepath.Join(t.TempDir(), "failed.xml")
	r := simulateXML(t, allUp, out, "-i", idCTDB+"_monitor_10000@"+failed+"=1")
	setReady(t, out, r)
	for _, a := range r.actions(vipOf) {
		t.Logf("transition after the failure: %s", a)
		if id, _, _ := strings.Cut(a.Resource, ":"); id == idCTDB && (a.Action == "start" || a.Action == "recover") && a.Node == failed {
			t.Errorf("CTDB restarts on %s in the transition that should move %s away: the address waits for it", failed, cfg.VIPs[v])
		}
	}
	if at := r.placement(t, cfg, vipOf)[v]; at == failed {
		t.Errorf("after CTDB failed on %s, %s is still there", failed, cfg.VIPs[v])
	}

	// Until the failure expires, CTDB stays stopped there and the address
	// away.
	_, still, acts := settle(t, cfg, vipOf, out)
	if still[v] == failed {
		t.Errorf("%s is back on %s before CTDB's failure there expired", cfg.VIPs[v], failed)
	}
	for _, a := range acts {
		if a.Action == "start" && a.Node == failed {
			t.Errorf("before the failure expired: %s", a)
		}
	}

	// The failure expires (setup's failure-timeout, 60 s): CTDB runs on
	// n3 again and the address comes home, not in the transition that
	// starts CTDB (it would be down while CTDB starts).
	later := time.Now().Add(2 * time.Minute).UTC().Format("2006-01-02 15:04:05Z")
	_, back, acts := settle(t, cfg, vipOf, out, "--set-datetime", later)
	if back[v] != failed {
		t.Errorf("%s does not come home to %s: on %s", cfg.VIPs[v], failed, back[v])
	}
	startsThere := map[int]bool{}
	for _, a := range acts {
		if a.vip < 0 && a.Action == "start" && a.Node == failed {
			startsThere[a.step] = true
		}
	}
	for _, a := range acts {
		t.Logf("then: %s (transition %d)", a, a.step)
		if a.vip == v && a.Action == "move" && startsThere[a.step] {
			t.Errorf("%s moves home while CTDB starts there: %s", cfg.VIPs[v], a)
		}
	}
}
