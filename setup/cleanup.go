package setup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/storhaug/storhaug/pacemaker"
)

// ErrNotSetUp: the CIB has none of storhaug's resources.
var ErrNotSetUp = errors.New("storhaug is not set up on this cluster (no " + IDPrefix + "* resources)")

// Cleaned is one resource whose failures a cleanup cleared.
type Cleaned struct {
	Resource string // the top-level resource (live) or the resource's history (CIB file)
	Node     string // "" for every node
}

// Cleanup clears the failures of storhaug's resources, on node only when
// node is not "". On a live cluster Pacemaker does it (crm_resource
// --cleanup for each of storhaug's top-level resources); on a CIB file,
// which crm_resource cannot clean, storhaug removes from the status section
// what Pacemaker's controller would: the operation history of each
// resource that failed on a node, and its fail counts there.
//
// It refuses a CIB whose cluster-name differs from cfg's HA_NAME (cfg nil:
// no check) and a node the CIB does not know.
func Cleanup(ctx context.Context, r Runner, cfg *Config, node string) ([]Cleaned, error) {
	cib, err := QueryCIB(ctx, r)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if name := ClusterName(cib); name != "" && name != cfg.Name {
			return nil, fmt.Errorf("this cluster is %q but %s says HA_NAME=%q: wrong cluster or wrong configuration", name, cfg.File, cfg.Name)
		}
	}
	if node != "" {
		known := cibNodes(cib)
		found := false
		for _, n := range known {
			found = found || n == node
		}
		if !found {
			return nil, fmt.Errorf("--node: %q is not a node of this cluster (its nodes: %s)", node, strings.Join(known, ", "))
		}
	}
	ids := topLevelOwned(cib)
	if len(ids) == 0 {
		return nil, ErrNotSetUp
	}
	if Offline() {
		next, cleaned := clearFailures(cib, node)
		if len(cleaned) == 0 {
			return nil, nil
		}
		if err := pacemaker.ReplaceSection(ctx, r, "status", next.Child("status").XML()); err != nil {
			return nil, err
		}
		return cleaned, nil
	}
	var cleaned []Cleaned
	for _, id := range ids {
		args := []string{"--cleanup", "--resource", id}
		if node != "" {
			args = append(args, "--node", node)
		}
		if _, err := r.Run(ctx, nil, "crm_resource", args...); err != nil {
			return cleaned, err
		}
		cleaned = append(cleaned, Cleaned{Resource: id, Node: node})
	}
	return cleaned, nil
}

// cibNodes returns the names of the nodes a CIB knows, sorted.
func cibNodes(cib *Element) []string {
	seen := map[string]bool{}
	if ns := cib.Find("configuration", "nodes"); ns != nil {
		for _, n := range ns.Children {
			if !n.Comment && n.Name == "node" && n.Get("uname") != "" {
				seen[n.Get("uname")] = true
			}
		}
	}
	if st := cib.Child("status"); st != nil {
		for _, n := range st.Children {
			if !n.Comment && n.Name == "node_state" && n.Get("uname") != "" {
				seen[n.Get("uname")] = true
			}
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func topLevelOwned(cib *Element) []string {
	var ids []string
	if rs := cib.Find("configuration", "resources"); rs != nil {
		for _, e := range rs.Children {
			if !e.Comment && Owned(e.Get("id")) {
				ids = append(ids, e.Get("id"))
			}
		}
	}
	return ids
}

// failCountRsc returns the resource a fail-count or last-failure node
// attribute counts for ("fail-count-RSC#monitor_10000", or without "#OP"
// as older Pacemakers name them).
func failCountRsc(attr string) (string, bool) {
	for _, p := range []string{"fail-count-", "last-failure-"} {
		if rest, ok := strings.CutPrefix(attr, p); ok {
			rsc, _, _ := strings.Cut(rest, "#")
			return rsc, true
		}
	}
	return "", false
}

// baseID strips a clone instance number ("storhaug-ctdb:1").
func baseID(id string) string {
	b, _, _ := strings.Cut(id, ":")
	return b
}

// clearFailures returns a copy of cib without the failures of storhaug's
// resources (on node only, unless ""): for each resource that failed on a
// node, its history there (so that Pacemaker probes it afresh) and its
// fail-count and last-failure attributes.
func clearFailures(cib *Element, node string) (*Element, []Cleaned) {
	next := cib.Clone()
	st := next.Child("status")
	if st == nil {
		return next, nil
	}
	var cleaned []Cleaned
	for _, ns := range st.Children {
		if ns.Comment || ns.Name != "node_state" || (node != "" && ns.Get("uname") != node) {
			continue
		}
		failed := map[string]bool{} // resource history ids
		ns.Walk(func(e *Element) bool {
			switch {
			case e.Name == "lrm_resource" && Owned(baseID(e.Get("id"))):
				for _, op := range e.Children {
					if op.Name == "lrm_rsc_op" && strings.HasSuffix(op.Get("id"), "_last_failure_0") {
						failed[e.Get("id")] = true
					}
				}
				return false
			case e.Name == "nvpair":
				if rsc, ok := failCountRsc(e.Get("name")); ok && Owned(baseID(rsc)) {
					failed[rsc] = true
				}
			}
			return true
		})
		if len(failed) == 0 {
			continue
		}
		ns.Walk(func(e *Element) bool {
			var kept []*Element
			for _, c := range e.Children {
				if c.Name == "lrm_resource" && failed[c.Get("id")] {
					continue
				}
				if rsc, ok := failCountRsc(c.Get("name")); ok && c.Name == "nvpair" && failed[rsc] {
					continue
				}
				kept = append(kept, c)
			}
			e.Children = kept
			return true
		})
		var ids []string
		for id := range failed {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			cleaned = append(cleaned, Cleaned{Resource: id, Node: ns.Get("uname")})
		}
	}
	return next, cleaned
}
