package pacemaker

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ClusterState is Pacemaker's view of the cluster, from one node's
// `crm_mon --output-as=xml` (in a partition each side has its own view).
type ClusterState struct {
	From           string // the node that answered
	DC             string // the DC's name, "" when there is none
	Quorum         bool   // the partition of From has quorum
	StonithEnabled bool   // fencing is on (the cluster option stonith-enabled)
	Nodes          []NodeState
	Clones         []Clone    // every clone, of primitives or of groups
	Resources      []Resource // every primitive, clone instances included
	Failures       []Failure  // failed actions
	FailCount      []FailCount
}

// NodeState is one node as Pacemaker sees it.
type NodeState struct {
	Name, ID                                             string
	Online, Standby, Maintenance, Pending, Unclean, IsDC bool
	Shutdown                                             bool
	ResourcesRunning                                     int
	Attributes                                           map[string]string // transient and permanent node attributes
}

// Resource is one primitive (or one clone instance).
type Resource struct {
	ID      string   // as crm_mon shows it ("vip1", "ctdb:0" for unique clones, "ctdb" for anonymous)
	Agent   string   // "ocf:storhaug:IPaddr3"
	Role    string   // "Started", "Stopped", "Promoted", "Unpromoted", ... (older names normalized)
	Active  bool     // runs somewhere
	Failed  bool     //
	Managed bool     //
	Orphan  bool     // no longer configured
	Blocked bool     //
	Nodes   []string // where it runs
	Parent  string   // the clone or group it belongs to ("" for none)
	Clone   string   // the clone it belongs to (also for a group inside a clone)
}

// Clone is one clone as crm_mon shows it; its instances are in
// ClusterState.Resources with Clone set to its ID.
type Clone struct {
	ID         string
	Promotable bool // multi_state
	Failed     bool
}

// Failure is one failed action.
type Failure struct {
	OpKey, Node, Task      string
	ExitCode               int
	ExitStatus, ExitReason string
	Status                 string
	Interval               string
	Call                   int
	Resource               string // from OpKey (everything before _<task>_<interval>)
	LastRCChange           string
	RawAttrs               map[string]string
}

// FailCount is a resource's fail count on a node.
type FailCount struct {
	Node, Resource string
	Count          int
}

// IsOnline reports whether node is online in this view.
func (s *ClusterState) IsOnline(node string) bool {
	for _, n := range s.Nodes {
		if n.Name == node {
			return n.Online
		}
	}
	return false
}

// Online lists the online nodes, sorted.
func (s *ClusterState) Online() []string {
	var out []string
	for _, n := range s.Nodes {
		if n.Online {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Offline lists the nodes that are not online, sorted.
func (s *ClusterState) Offline() []string {
	var out []string
	for _, n := range s.Nodes {
		if !n.Online {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// BaseID strips a clone instance suffix: "ctdb:1" -> "ctdb".
func BaseID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[:i]
	}
	return id
}

// Instances lists the primitives with that id (a clone's instances too:
// "ctdb" matches "ctdb:0", "ctdb:1"), or of the clone or group named id.
func (s *ClusterState) Instances(id string) []Resource {
	var out []Resource
	for _, r := range s.Resources {
		if BaseID(r.ID) == id || r.Parent == id || r.Clone == id {
			out = append(out, r)
		}
	}
	return out
}

// Resource returns the first primitive (instance) with that id.
func (s *ClusterState) Resource(id string) (Resource, bool) {
	in := s.Instances(id)
	if len(in) == 0 {
		return Resource{}, false
	}
	return in[0], true
}

// RunningOn lists, sorted, the nodes where the resource (any instance of
// it, or of the clone/group named id) is active.
func (s *ClusterState) RunningOn(id string) []string {
	seen := map[string]bool{}
	for _, r := range s.Instances(id) {
		if !r.Active {
			continue
		}
		for _, n := range r.Nodes {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WithRole lists, sorted, the nodes where an instance of id has role
// ("Promoted", "Unpromoted", "Started").
func (s *ClusterState) WithRole(id, role string) []string {
	role = normRole(role)
	var out []string
	for _, r := range s.Instances(id) {
		if r.Role == role && r.Active {
			out = append(out, r.Nodes...)
		}
	}
	sort.Strings(out)
	return out
}

// FailuresOf lists the failed actions of resource id (any instance).
func (s *ClusterState) FailuresOf(id string) []Failure {
	var out []Failure
	for _, f := range s.Failures {
		if BaseID(f.Resource) == id {
			out = append(out, f)
		}
	}
	return out
}

// FailCountOf is the resource's fail count on node (0 if none).
func (s *ClusterState) FailCountOf(id, node string) int {
	for _, f := range s.FailCount {
		if BaseID(f.Resource) == id && f.Node == node {
			return f.Count
		}
	}
	return 0
}

// Attribute returns a node attribute as crm_mon shows it.
func (s *ClusterState) Attribute(node, name string) (string, bool) {
	for _, n := range s.Nodes {
		if n.Name == node {
			v, ok := n.Attributes[name]
			return v, ok
		}
	}
	return "", false
}

func normRole(r string) string {
	switch r {
	case "Master":
		return "Promoted"
	case "Slave":
		return "Unpromoted"
	}
	return r
}

// The XML of crm_mon --output-as=xml (Pacemaker 2.1).
type xmlResult struct {
	Summary struct {
		DC struct {
			Present    string `xml:"present,attr"`
			Name       string `xml:"name,attr"`
			WithQuorum string `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
		Options struct {
			Stonith string `xml:"stonith-enabled,attr"`
		} `xml:"cluster_options"`
	} `xml:"summary"`
	Nodes []struct {
		Name             string `xml:"name,attr"`
		ID               string `xml:"id,attr"`
		Online           string `xml:"online,attr"`
		Standby          string `xml:"standby,attr"`
		Maintenance      string `xml:"maintenance,attr"`
		Pending          string `xml:"pending,attr"`
		Unclean          string `xml:"unclean,attr"`
		Shutdown         string `xml:"shutdown,attr"`
		IsDC             string `xml:"is_dc,attr"`
		ResourcesRunning string `xml:"resources_running,attr"`
	} `xml:"nodes>node"`
	Resources xmlContainer `xml:"resources"`
	NodeAttrs []struct {
		Name  string `xml:"name,attr"`
		Attrs []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"attribute"`
	} `xml:"node_attributes>node"`
	History []struct {
		Name string `xml:"name,attr"`
		Res  []struct {
			ID        string `xml:"id,attr"`
			FailCount string `xml:"fail-count,attr"`
		} `xml:"resource_history"`
	} `xml:"node_history>node"`
	Failures []struct {
		Attrs []xml.Attr `xml:",any,attr"`
	} `xml:"failures>failure"`
	Status struct {
		Code    string `xml:"code,attr"`
		Message string `xml:"message,attr"`
	} `xml:"status"`
}

type xmlPrimitive struct {
	ID      string `xml:"id,attr"`
	Agent   string `xml:"resource_agent,attr"`
	Role    string `xml:"role,attr"`
	Active  string `xml:"active,attr"`
	Orphan  string `xml:"orphaned,attr"`
	Blocked string `xml:"blocked,attr"`
	Managed string `xml:"managed,attr"`
	Failed  string `xml:"failed,attr"`
	Nodes   []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

type xmlContainer struct {
	ID         string         `xml:"id,attr"`
	MultiState string         `xml:"multi_state,attr"`
	Failed     string         `xml:"failed,attr"`
	Resources  []xmlPrimitive `xml:"resource"`
	Groups     []xmlContainer `xml:"group"`
	Clones     []xmlContainer `xml:"clone"`
	Bundles    []xmlContainer `xml:"bundle"`
	Replicas   []xmlContainer `xml:"replica"`
}

func (c *xmlContainer) flatten(parent, clone string, out *[]Resource, clones *[]Clone) {
	for _, p := range c.Resources {
		r := Resource{ID: p.ID, Agent: p.Agent, Role: normRole(p.Role), Active: p.Active == "true",
			Failed: p.Failed == "true", Managed: p.Managed != "false", Orphan: p.Orphan == "true",
			Blocked: p.Blocked == "true", Parent: parent, Clone: clone}
		for _, n := range p.Nodes {
			r.Nodes = append(r.Nodes, n.Name)
		}
		*out = append(*out, r)
	}
	for i := range c.Groups {
		c.Groups[i].flatten(c.Groups[i].ID, clone, out, clones)
	}
	for i := range c.Clones {
		cl := &c.Clones[i]
		*clones = append(*clones, Clone{ID: cl.ID, Promotable: cl.MultiState == "true", Failed: cl.Failed == "true"})
		cl.flatten(cl.ID, cl.ID, out, clones)
	}
	for i := range c.Bundles {
		c.Bundles[i].flatten(c.Bundles[i].ID, clone, out, clones)
	}
	for i := range c.Replicas {
		c.Replicas[i].flatten(parent, clone, out, clones)
	}
}

// CrmMonArgs are the arguments of crm_mon that ParseCrmMon reads the
// output of: one shot, inactive resources included, as XML.
var CrmMonArgs = []string{"--one-shot", "--inactive", "--output-as=xml"}

// CrmMon asks crm_mon for the cluster's state.
func CrmMon(ctx context.Context, r Runner) (*ClusterState, error) {
	out, err := r.Run(ctx, nil, "crm_mon", CrmMonArgs...)
	if err != nil {
		return nil, fmt.Errorf("crm_mon: %w", err)
	}
	return ParseCrmMon(out)
}

// ParseCrmMon parses the output of `crm_mon --output-as=xml`.
func ParseCrmMon(data []byte) (*ClusterState, error) {
	var x xmlResult
	if err := xml.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("crm_mon xml: %w", err)
	}
	if x.Status.Code != "" && x.Status.Code != "0" {
		return nil, fmt.Errorf("crm_mon: status %s: %s", x.Status.Code, x.Status.Message)
	}
	s := &ClusterState{Quorum: x.Summary.DC.WithQuorum == "true", StonithEnabled: x.Summary.Options.Stonith != "false"}
	if x.Summary.DC.Present == "true" {
		s.DC = x.Summary.DC.Name
	}
	attrs := map[string]map[string]string{}
	for _, na := range x.NodeAttrs {
		m := map[string]string{}
		for _, a := range na.Attrs {
			m[a.Name] = a.Value
		}
		attrs[na.Name] = m
	}
	for _, n := range x.Nodes {
		rr, _ := strconv.Atoi(n.ResourcesRunning)
		s.Nodes = append(s.Nodes, NodeState{Name: n.Name, ID: n.ID, Online: n.Online == "true",
			Standby: n.Standby == "true", Maintenance: n.Maintenance == "true", Pending: n.Pending == "true",
			Unclean: n.Unclean == "true", Shutdown: n.Shutdown == "true", IsDC: n.IsDC == "true",
			ResourcesRunning: rr, Attributes: attrs[n.Name]})
	}
	x.Resources.flatten("", "", &s.Resources, &s.Clones)
	for _, h := range x.History {
		for _, r := range h.Res {
			if c, err := strconv.Atoi(r.FailCount); err == nil && r.FailCount != "" {
				s.FailCount = append(s.FailCount, FailCount{Node: h.Name, Resource: r.ID, Count: c})
			} else if r.FailCount == "INFINITY" {
				s.FailCount = append(s.FailCount, FailCount{Node: h.Name, Resource: r.ID, Count: 1000000})
			}
		}
	}
	for _, f := range x.Failures {
		m := map[string]string{}
		for _, a := range f.Attrs {
			m[a.Name.Local] = a.Value
		}
		fl := Failure{OpKey: m["op_key"], Node: m["node"], Task: m["task"], ExitStatus: m["exitstatus"],
			ExitReason: m["exitreason"], Status: m["status"], Interval: m["interval"],
			LastRCChange: m["last-rc-change"], RawAttrs: m}
		fl.ExitCode, _ = strconv.Atoi(m["exitcode"])
		fl.Call, _ = strconv.Atoi(m["call"])
		fl.Resource = opKeyResource(fl.OpKey)
		s.Failures = append(s.Failures, fl)
	}
	return s, nil
}

// opKeyResource: "vip1_monitor_10000" -> "vip1" (resource ids may contain
// underscores; the last two fields are task and interval).
func opKeyResource(key string) string {
	f := strings.Split(key, "_")
	if len(f) < 3 {
		return key
	}
	// tasks with an underscore: migrate_to, migrate_from
	end := len(f) - 2
	if end >= 1 && (f[end] == "to" || f[end] == "from") && f[end-1] == "migrate" {
		end--
	}
	return strings.Join(f[:end], "_")
}
