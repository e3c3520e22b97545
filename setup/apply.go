package setup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/storhaug/storhaug/pacemaker"
)

// Runner runs Pacemaker's command-line tools; ExitError is one that
// exited non-zero; Exec runs them (package pacemaker).
type (
	Runner    = pacemaker.Runner
	ExitError = pacemaker.ExitError
	Exec      = pacemaker.Exec
)

// ErrClusterDown is returned when the CIB cannot be reached.
var ErrClusterDown = pacemaker.ErrClusterDown

// Offline reports whether the tools work on a CIB file (CIB_file) rather
// than a live cluster.
func Offline() bool { return pacemaker.Offline() }

// QueryCIB reads the whole CIB.
func QueryCIB(ctx context.Context, r Runner) (*Element, error) {
	out, err := pacemaker.QueryCIB(ctx, r)
	if err != nil {
		return nil, err
	}
	cib, err := ParseXML(out)
	if err != nil {
		return nil, fmt.Errorf("cibadmin --query: %w", err)
	}
	if cib.Name != "cib" || cib.Child("configuration") == nil {
		return nil, fmt.Errorf("cibadmin --query: not a CIB")
	}
	return cib, nil
}

// ClusterName returns the cluster-name property of a CIB, or "".
func ClusterName(cib *Element) string {
	return Property(cib, "cluster-name")
}

// Property returns the value of a cluster property in a CIB, or "", as
// Pacemaker reads it: cib-bootstrap-options first whatever the scores,
// then the other cluster_property_sets by score, highest first; the first
// set that has the property decides.
func Property(cib *Element, name string) string {
	v, _ := property(cib, name)
	return v
}

// property is Property, and the id of the set the value comes from.
func property(cib *Element, name string) (value, set string) {
	cc := cib.Find("configuration", "crm_config")
	if cc == nil {
		return "", ""
	}
	type cand struct {
		first bool
		score int
		value string
		set   string
	}
	var cs []cand
	for _, s := range cc.Children {
		if s.Comment || s.Name != "cluster_property_set" {
			continue
		}
		for _, nv := range s.Children {
			if !nv.Comment && nv.Name == "nvpair" && nv.Get("name") == name {
				cs = append(cs, cand{s.Get("id") == bootstrapSet, scoreOf(s.Get("score")), nv.Get("value"), s.Get("id")})
				break
			}
		}
	}
	if len(cs) == 0 {
		return "", ""
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].first != cs[j].first {
			return cs[i].first
		}
		return cs[i].score > cs[j].score
	})
	return cs[0].value, cs[0].set
}

// bootstrapSet is the cluster_property_set Pacemaker reads before every
// other (and where pcs property set and crm_attribute write).
const bootstrapSet = "cib-bootstrap-options"

func configFileOf(cfg *Config) string {
	if cfg == nil || cfg.File == "" {
		return "the configuration"
	}
	return cfg.File
}

func scoreOf(s string) int {
	switch strings.TrimPrefix(strings.ToUpper(s), "+") {
	case "INFINITY":
		return 1000000
	case "-INFINITY":
		return -1000000
	}
	n, _ := strconv.Atoi(s)
	return n
}

// schemaBefore reports whether a CIB is validated against a Pacemaker
// schema older than pacemaker-maj.min (false when it cannot tell).
func schemaBefore(cib *Element, maj, min int) bool {
	v := strings.TrimPrefix(cib.Get("validate-with"), "pacemaker-")
	as, bs, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	a, err1 := strconv.Atoi(as)
	b, err2 := strconv.Atoi(bs)
	if err1 != nil || err2 != nil {
		return false
	}
	return a < maj || a == maj && b < min
}

// legacyRoles reports whether a CIB's schema predates role="Promoted".
func legacyRoles(cib *Element) bool { return schemaBefore(cib, 3, 7) }

// noInfluence reports whether a CIB's schema predates the influence
// attribute of colocations (Pacemaker 2.1).
func noInfluence(cib *Element) bool { return schemaBefore(cib, 3, 6) }

// Change is one difference between the CIB and the model.
type Change struct {
	Op   string // "add", "update", "remove"
	Kind string // element name
	ID   string
}

func (c Change) String() string { return c.Op + " " + c.Kind + " " + c.ID }

// PlanOptions control Plan.
type PlanOptions struct {
	// CreateNodes adds node entries for configured nodes that the CIB does
	// not have (for CIB files; a live cluster adds its members itself).
	CreateNodes bool
	// IgnoreName skips the cluster-name check.
	IgnoreName bool
}

// Plan returns a copy of cur with storhaug's objects replaced by those of
// m (m nil: removed, as for teardown), and what changed. Objects whose ids
// do not start with IDPrefix are never touched.
func Plan(cur *Element, cfg *Config, m *Model, o PlanOptions) (*Element, []Change, error) {
	if cfg != nil && !o.IgnoreName {
		if name := ClusterName(cur); name != "" && name != cfg.Name {
			return nil, nil, fmt.Errorf("this cluster is %q but %s says HA_NAME=%q: wrong cluster or wrong configuration", name, cfg.File, cfg.Name)
		}
	}
	next := cur.Clone()
	conf := next.Child("configuration")
	if conf == nil {
		return nil, nil, fmt.Errorf("CIB has no configuration section")
	}
	var changes []Change
	section := func(name string) *Element {
		s := conf.Child(name)
		if s == nil {
			s = E(name)
			conf.Add(s)
		}
		return s
	}
	var rscs, cons []*Element
	var props [][2]string
	attrs := map[string]map[string]string{}
	if m != nil {
		rscs, cons, props, attrs = m.Resources, m.Constraints, m.Properties, m.NodeAttrs
	}
	changes = append(changes, merge(section("resources"), rscs)...)
	changes = append(changes, merge(section("constraints"), cons)...)

	// Cluster properties, in a set of storhaug's own. Pacemaker reads
	// cib-bootstrap-options before it whatever its score: a different value
	// there would silently win, so setup refuses and says where it is.
	for _, p := range props {
		if v, set := property(cur, p[0]); set == bootstrapSet && !strings.EqualFold(v, p[1]) {
			return nil, nil, fmt.Errorf("cluster property %s is %q in %s, which Pacemaker reads before storhaug's own set: %s=%q would not take effect; remove it there (pcs property unset %s, or crm_attribute --type crm_config --delete --name %s) or make %s agree",
				p[0], v, bootstrapSet, p[0], p[1], p[0], p[0], configFileOf(cfg))
		}
	}
	var propSet []*Element
	if len(props) > 0 {
		s := nvset("cluster_property_set", IDPrefix+"options", props)
		s.Set("score", "INFINITY")
		propSet = append(propSet, s)
	}
	changes = append(changes, merge(section("crm_config"), propSet)...)

	// Node attributes.
	nodes := section("nodes")
	byName := map[string]*Element{}
	for _, n := range nodes.Children {
		if !n.Comment && n.Name == "node" {
			byName[n.Get("uname")] = n
		}
	}
	if m != nil {
		var missing []string
		for _, name := range m.Nodes {
			if byName[name] != nil {
				continue
			}
			if !o.CreateNodes {
				missing = append(missing, name)
				continue
			}
			n := E("node", "id", name, "uname", name, "type", "member", "description", Marker)
			nodes.Add(n)
			byName[name] = n
			changes = append(changes, Change{"add", "node", name})
		}
		if len(missing) > 0 {
			var known []string
			for k := range byName {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, nil, fmt.Errorf("HA_CLUSTER_NODES: %s not known to this cluster (its nodes: %s); add them to corosync.conf and start Pacemaker there first",
				strings.Join(missing, ", "), strings.Join(known, ", "))
		}
	}
	for _, n := range append([]*Element(nil), nodes.Children...) {
		if n.Comment || n.Name != "node" {
			continue
		}
		name := n.Get("uname")
		var want []*Element
		if a := attrs[name]; len(a) > 0 {
			var pairs [][2]string
			for k, v := range a {
				pairs = append(pairs, [2]string{k, v})
			}
			sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
			want = append(want, nvset("instance_attributes", xmlID(IDPrefix+"node-"+name), pairs))
		}
		changes = append(changes, merge(n, want)...)
		if m == nil {
			changes = append(changes, dropAgentAttrs(n)...)
		}
		// A node storhaug added to a CIB file goes when nothing else
		// refers to it.
		if m == nil && n.Get("description") == Marker && len(n.Children) == 0 {
			removeChild(nodes, n)
			changes = append(changes, Change{"remove", "node", name})
		}
	}
	return next, changes, nil
}

// dropAgentAttrs removes, for teardown, the permanent node attributes
// storhaug's agents may have set (names beginning with IDPrefix) from the
// node's attribute sets, and sets left empty.
func dropAgentAttrs(node *Element) []Change {
	var changes []Change
	var kept []*Element
	for _, set := range node.Children {
		if set.Comment || set.Name != "instance_attributes" {
			kept = append(kept, set)
			continue
		}
		var nvs []*Element
		dropped := false
		for _, nv := range set.Children {
			if nv.Name == "nvpair" && strings.HasPrefix(nv.Get("name"), IDPrefix) {
				changes = append(changes, Change{"remove", "node attribute", node.Get("uname") + ":" + nv.Get("name")})
				dropped = true
				continue
			}
			nvs = append(nvs, nv)
		}
		set.Children = nvs
		if dropped && len(nvs) == 0 {
			continue
		}
		kept = append(kept, set)
	}
	node.Children = kept
	return changes
}

func removeChild(parent, child *Element) {
	for i, c := range parent.Children {
		if c == child {
			parent.Children = append(parent.Children[:i], parent.Children[i+1:]...)
			return
		}
	}
}

// merge makes the storhaug-owned children of parent equal to want: an
// existing object is replaced where it stands (so re-runs do not reorder
// anything), new ones are appended, stale ones removed.
func merge(parent *Element, want []*Element) []Change {
	var changes []Change
	wantByID := map[string]*Element{}
	for _, w := range want {
		wantByID[w.Get("id")] = w
	}
	seen := map[string]bool{}
	var kept []*Element
	for _, c := range parent.Children {
		id := c.Get("id")
		if c.Comment || !Owned(id) {
			kept = append(kept, c)
			continue
		}
		w, ok := wantByID[id]
		if !ok || seen[id] {
			changes = append(changes, Change{"remove", c.Name, id})
			continue
		}
		seen[id] = true
		if w.Canonical() != c.Canonical() {
			changes = append(changes, Change{"update", w.Name, id})
			kept = append(kept, w.Clone())
		} else {
			kept = append(kept, c)
		}
	}
	for _, w := range want {
		if id := w.Get("id"); !seen[id] {
			seen[id] = true
			changes = append(changes, Change{"add", w.Name, id})
			kept = append(kept, w.Clone())
		}
	}
	parent.Children = kept
	return changes
}

// Commit writes next (made by Plan from cur) into the CIB as one patch
// that Pacemaker applies only if the CIB is still at cur's version: the
// difference computed by crm_diff, applied by cibadmin --patch. It returns
// false (and writes nothing) when the configurations are equal.
func Commit(ctx context.Context, r Runner, cur, next *Element) (bool, error) {
	if cur.Child("configuration").Canonical() == next.Child("configuration").Canonical() {
		return false, nil
	}
	next = next.Clone()
	epoch, _ := strconv.Atoi(cur.Get("epoch"))
	next.Set("epoch", strconv.Itoa(epoch+1))
	next.Set("num_updates", "0")
	// The patch concerns the configuration only: leave status out of both
	// sides, so the patch is small and cannot touch it.
	a, b := withoutStatus(cur), withoutStatus(next)
	if err := pacemaker.PatchCIB(ctx, r, a.XML(), b.XML()); err != nil {
		return false, err
	}
	return true, nil
}

// ErrConflict: the CIB changed between reading and writing it.
var ErrConflict = pacemaker.ErrConflict

func withoutStatus(cib *Element) *Element {
	c := *cib
	c.Children = nil
	for _, ch := range cib.Children {
		if ch.Name != "status" {
			c.Children = append(c.Children, ch)
		}
	}
	return &c
}

// Update reads the CIB, plans with plan, and commits, retrying (a few
// times, within ctx) when the CIB changed in between.
func Update(ctx context.Context, r Runner, plan func(cur *Element) (*Element, []Change, error)) (before, after *Element, changes []Change, changed bool, err error) {
	for attempt := 0; ; attempt++ {
		cur, err := QueryCIB(ctx, r)
		if err != nil {
			return nil, nil, nil, false, err
		}
		next, ch, err := plan(cur)
		if err != nil {
			return cur, nil, nil, false, err
		}
		ok, err := Commit(ctx, r, cur, next)
		if errors.Is(err, ErrConflict) && attempt < 5 && ctx.Err() == nil {
			continue
		}
		return cur, next, ch, ok, err
	}
}
