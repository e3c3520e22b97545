package setup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An upgrade from a storhaug without the storhaug-ready clone moves no
// address: setup marks the nodes where the services run ready before its
// patch makes the addresses' preferences depend on it. Pacemaker's
// scheduler (crm_simulate) plans the transition after the patch.
func TestUpgradeToReadyMovesNothing(t *testing.T) {
	needTools(t)
	cfg := testConfig(t, "HA_CLUSTER_NODES=\"n1,n2,n3\"\nHA_SERVICES=\"nfs smb\"\n"+
		"HA_VIPS=\"198.51.100.201/24 198.51.100.202/24 198.51.100.203/24 198.51.100.204/24\"\n")
	// What setup built before: plain preferences, no ready clone.
	old := Build(cfg, Options{})
	var rs, cs []*Element
	for _, r := range old.Resources {
		if r.Get("id") != idReadyClone {
			rs = append(rs, r)
		}
	}
	for _, c := range old.Constraints {
		if strings.Contains(c.Get("id"), "ready-clone") {
			continue
		}
		if n, score := preferredNode(c); n != "" {
			c = prefers(c.Get("rsc"), n, score)
		}
		cs = append(cs, c)
	}
	old.Resources, old.Constraints = rs, cs
	// Fencing on, with a device (its agent never runs), as in production:
	// Pacemaker counts it when it places the addresses that have no
	// preference.
	base := readCIB(t, emptyCIB(t))
	base.Find("configuration", "resources").Add(E("primitive", "id", "fence", "class", "stonith", "type", "fence_dummy"))
	cib, _, err := Plan(base, cfg, old, PlanOptions{CreateNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "old.xml")
	if err := os.WriteFile(f, cib.XML(), 0o600); err != nil {
		t.Fatal(err)
	}
	settled := simulate(t, f, "-u", "n1", "-u", "n2", "-u", "n3")
	for _, v := range statusOf(t, settled).VIPs {
		if v.Node != v.Home {
			t.Fatalf("before the upgrade: %s on %s, home %s", v.Address, v.Node, v.Home)
		}
	}

	moves := func(mark bool) []string {
		g := filepath.Join(t.TempDir(), "cib.xml")
		b, _ := os.ReadFile(settled)
		if err := os.WriteFile(g, b, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("CIB_file", g)
		if mark {
			marked, err := MarkReady(context.Background(), Exec{}, cfg)
			if err != nil || strings.Join(marked, ",") != "n1,n2,n3" {
				t.Fatalf("marked %v: %v", marked, err)
			}
		}
		_, _, _, _, err := Update(context.Background(), Exec{}, func(cur *Element) (*Element, []Change, error) {
			return Plan(cur, cfg, BuildFor(cfg, cur), PlanOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		sim := run(t, nil, "crm_simulate", "-x", g, "-q", "true", "-R")
		for _, line := range strings.Split(sim, "\n") {
			if strings.Contains(line, "* Move") {
				out = append(out, strings.TrimSpace(line))
			}
		}
		return out
	}
	if m := moves(false); len(m) == 0 {
		t.Error("without MarkReady the upgrade moves no address: the test shows nothing")
	} else {
		t.Logf("without MarkReady the upgrade moves %d addresses and triggers", len(m))
	}
	if m := moves(true); len(m) > 0 {
		t.Errorf("the upgrade moves addresses:\n%s", strings.Join(m, "\n"))
	}
	// Once set up with it, there is nothing to mark.
	if marked, err := MarkReady(context.Background(), Exec{}, cfg); err != nil || len(marked) > 0 {
		t.Errorf("marked %v again: %v", marked, err)
	}
}
