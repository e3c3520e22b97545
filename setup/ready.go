package setup

import (
	"context"

	"github.com/storhaug/storhaug/pacemaker"
)

// MarkReady prepares a setup that adds the storhaug-ready clone to a
// cluster whose services already run (an upgrade from a storhaug without
// it): it sets AttrReady to 1 on every online node where all the services
// the VIPs depend on run, as the clone will once it starts there. Without
// it the VIPs' preferences, which count only where AttrReady is 1, would
// all be void for one transition, and Pacemaker would move every address
// away and back. It returns the nodes it marked; nothing when the CIB has
// the clone already (its agent keeps the attribute) or cfg needs none.
func MarkReady(ctx context.Context, r Runner, cfg *Config) ([]string, error) {
	cur, err := QueryCIB(ctx, r)
	if err != nil {
		return nil, err
	}
	var has bool
	if rs := cur.Find("configuration", "resources"); rs != nil {
		for _, e := range rs.Children {
			has = has || e.Get("id") == idReadyClone
		}
	}
	if has {
		return nil, nil
	}
	// The clones the ready clone follows in the model.
	var deps []string
	for _, c := range BuildFor(cfg, cur).Constraints {
		if c.Name == "rsc_colocation" && c.Get("rsc") == idReadyClone {
			deps = append(deps, c.Get("with-rsc"))
		}
	}
	if len(deps) == 0 {
		return nil, nil
	}
	mon, err := pacemaker.CrmMon(ctx, r)
	if err != nil {
		return nil, err
	}
	var marked []string
	for _, n := range mon.Online() {
		all := true
		for _, d := range deps {
			on := false
			for _, m := range mon.RunningOn(d) {
				on = on || m == n
			}
			all = all && on
		}
		if !all {
			continue
		}
		if err := pacemaker.SetTransientAttr(ctx, r, n, AttrReady, "1"); err != nil {
			return marked, err
		}
		marked = append(marked, n)
	}
	return marked, nil
}
