package setup

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/storhaug/storhaug/pacemaker"
)

// Status is the state of a storhaug cluster as a person wants to see it.
type Status struct {
	Cluster        string          `json:"cluster"`
	Offline        bool            `json:"offline,omitempty"` // read from a CIB file
	DC             string          `json:"dc,omitempty"`
	Quorum         bool            `json:"quorum"`
	StonithEnabled bool            `json:"stonith_enabled"`
	Nodes          []NodeStatus    `json:"nodes"`
	VIPs           []VIPStatus     `json:"vips"`
	Services       []ServiceStatus `json:"services"`
	CTDBLeader     string          `json:"ctdb_leader,omitempty"`
	Failures       []Failure       `json:"failures,omitempty"`
	Warnings       []string        `json:"warnings,omitempty"`
	SetUp          bool            `json:"set_up"` // storhaug's resources are in the CIB
	// Detection is corosync's failure detection as it runs (nil: offline,
	// or corosync could not be asked): the first part of every outage.
	Detection *Detection `json:"failure_detection,omitempty"`

	promotableCTDB bool
	nfs            bool      // a ganesha_trigger per VIP: grace matters
	now            time.Time // when the history was read
}

// Detection is corosync's runtime token and consensus timeouts, and about
// how long after a node stops the others' Pacemaker learns it is lost.
type Detection struct {
	TokenMS     int64   `json:"token_ms"`
	ConsensusMS int64   `json:"consensus_ms"`
	LostAfterS  float64 `json:"lost_after_s"`
}

// NodeStatus is one cluster node.
type NodeStatus struct {
	Name        string            `json:"name"`
	State       string            `json:"state"` // online, OFFLINE, UNCLEAN, standby, maintenance, pending
	Storage     bool              `json:"storage"`
	DC          bool              `json:"dc,omitempty"`
	VIPs        []string          `json:"vips,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	GraceActive *bool             `json:"ganesha_grace,omitempty"`
}

// VIPStatus is one virtual address.
type VIPStatus struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Node    string `json:"node,omitempty"` // "" when stopped
	Home    string `json:"home,omitempty"` // the node it prefers most
	State   string `json:"state"`          // Started, Stopped, FAILED...
	// LastMove is its last move (or start), from Pacemaker's operation
	// and fencing history; nil when the history does not tell.
	LastMove *Move `json:"last_move,omitempty"`
	// Grace: whether NFS-Ganesha on its node is in grace, refusing new
	// opens and locks to every client but those reclaiming: "holding",
	// "lifted", "unknown" (the node's ganesha cannot be asked from
	// here); "" without NFS.
	Grace string `json:"grace,omitempty"`
}

// The values of VIPStatus.Grace.
const (
	GraceHolding = "holding"
	GraceLifted  = "lifted"
	GraceUnknown = "unknown"
)

// ServiceStatus is one of storhaug's clones.
type ServiceStatus struct {
	ID       string   `json:"id"`
	Agent    string   `json:"agent"`
	Running  []string `json:"running"`
	Promoted []string `json:"promoted,omitempty"`
	Stopped  int      `json:"stopped"`
	Failed   bool     `json:"failed,omitempty"`
}

// Failure is a failed operation Pacemaker remembers.
type Failure struct {
	Node     string `json:"node"`
	Resource string `json:"resource"`
	Op       string `json:"op"`
	Result   string `json:"result"`
	Reason   string `json:"reason,omitempty"`
	When     string `json:"when,omitempty"`
}

// fenceHistoryTimeout bounds the question to the fencer: status shows the
// rest without it.
var fenceHistoryTimeout = 5 * time.Second

// ReadStatus gathers the status from crm_mon, the CIB (with its operation
// history) and the fencer's history.
func ReadStatus(ctx context.Context, r Runner) (*Status, error) {
	cib, err := QueryCIB(ctx, r)
	if err != nil {
		return nil, err
	}
	mon, err := pacemaker.CrmMon(ctx, r)
	if err != nil {
		return nil, err
	}
	h := History{Now: time.Now()}
	var warn []string
	if h.Ops, err = pacemaker.ParseOpHistory(cib.XML()); err != nil {
		warn = append(warn, fmt.Sprintf("no operation history: %v", err))
	}
	if !Offline() {
		fctx, cancel := context.WithTimeout(ctx, fenceHistoryTimeout)
		h.Fencing, err = pacemaker.FenceHistory(fctx, r)
		cancel()
		if err != nil {
			warn = append(warn, fmt.Sprintf("no fencing history (a failed node's addresses show no outage): %v", err))
		}
	}
	st := buildStatus(cib, mon, h)
	if !Offline() {
		tctx, cancel := context.WithTimeout(ctx, fenceHistoryTimeout)
		t, err := pacemaker.ReadTotem(tctx, r)
		cancel()
		if err != nil {
			warn = append(warn, fmt.Sprintf("failure detection unknown: %v", err))
		} else {
			st.Detection = &Detection{TokenMS: t.Token.Milliseconds(), ConsensusMS: t.Consensus.Milliseconds(), LostAfterS: t.Detect().Seconds()}
		}
	}
	st.Warnings = append(st.Warnings, warn...)
	return st, nil
}

// History is what Pacemaker recorded of the past: the nodes' operation
// history (the CIB's status section) and the fencer's; Now is when it was
// read.
type History struct {
	Ops     []pacemaker.Op
	Fencing []pacemaker.FenceEvent
	Now     time.Time
}

// ParseStatus builds the status from a CIB and crm_mon's XML output, the
// operation history from the CIB's status section, h the fencing history
// and the time.
func ParseStatus(cib *Element, crmMonXML []byte, h History) (*Status, error) {
	mon, err := pacemaker.ParseCrmMon(crmMonXML)
	if err != nil {
		return nil, err
	}
	if h.Ops == nil {
		if h.Ops, err = pacemaker.ParseOpHistory(cib.XML()); err != nil {
			return nil, err
		}
	}
	return buildStatus(cib, mon, h), nil
}

// buildStatus builds the status from a CIB, crm_mon's view and the history.
func buildStatus(cib *Element, mon *pacemaker.ClusterState, h History) *Status {
	st := &Status{
		Cluster:        ClusterName(cib),
		Offline:        Offline(),
		DC:             mon.DC,
		Quorum:         mon.Quorum,
		StonithEnabled: mon.StonithEnabled,
		now:            h.Now,
	}
	// Everything storhaug knows from the CIB: VIP addresses, homes,
	// which nodes are storage nodes.
	vipAddr := map[string]string{}
	vipOrder := map[string]int{}
	home := map[string]string{}
	best := map[string]int{}
	if rs := cib.Find("configuration", "resources"); rs != nil {
		for _, r := range rs.Children {
			if Owned(r.Get("id")) {
				st.SetUp = true
			}
			r.Walk(func(e *Element) bool {
				if e.Name == "primitive" && e.Get("type") == "ganesha_trigger" && Owned(e.Get("id")) {
					st.nfs = true
				}
				return true
			})
			if r.Name == "primitive" && Owned(r.Get("id")) && r.Get("type") == "IPaddr3" {
				if ia := r.Child("instance_attributes"); ia != nil {
					for _, nv := range ia.Children {
						if nv.Get("name") == paramIP {
							vipAddr[r.Get("id")] = nv.Get("value")
							vipOrder[r.Get("id")] = len(vipOrder)
						}
					}
				}
			}
		}
	}
	if cs := cib.Find("configuration", "constraints"); cs != nil {
		for _, c := range cs.Children {
			if n, s := preferredNode(c); n != "" && Owned(c.Get("id")) && s > best[c.Get("rsc")] {
				best[c.Get("rsc")], home[c.Get("rsc")] = s, n
			}
		}
	}
	// role=storage as configured (crm_mon shows no attributes of nodes
	// that are down).
	cibStorage := map[string]bool{}
	if ns := cib.Find("configuration", "nodes"); ns != nil {
		for _, n := range ns.Children {
			n.Walk(func(e *Element) bool {
				if e.Name == "nvpair" && e.Get("name") == "role" && e.Get("value") == "storage" {
					cibStorage[n.Get("uname")] = true
				}
				return true
			})
		}
	}
	nodeIdx := map[string]int{}
	for _, n := range mon.Nodes {
		state := "online"
		switch {
		case n.Unclean:
			state = "UNCLEAN"
		case !n.Online:
			state = "OFFLINE"
		case n.Pending:
			state = "pending"
		case n.Shutdown:
			state = "shutting down"
		case n.Maintenance:
			state = "maintenance"
		case n.Standby:
			state = "standby"
		}
		ns := NodeStatus{Name: n.Name, State: state, DC: n.IsDC, Attributes: n.Attributes}
		ns.Storage = n.Attributes["role"] == "storage" || cibStorage[n.Name]
		nodeIdx[n.Name] = len(st.Nodes)
		st.Nodes = append(st.Nodes, ns)
	}

	for _, r := range mon.Resources {
		if !Owned(r.ID) || r.Parent != "" {
			continue
		}
		if addr, ok := vipAddr[r.ID]; ok {
			v := VIPStatus{ID: r.ID, Address: addr, Home: home[r.ID], State: r.Role}
			if r.Failed {
				v.State = "FAILED"
			}
			if len(r.Nodes) > 0 && r.Active {
				v.Node = r.Nodes[0]
				if i, ok := nodeIdx[v.Node]; ok {
					st.Nodes[i].VIPs = append(st.Nodes[i].VIPs, addr)
				}
			}
			v.LastMove = lastMove(r.ID, v.Node, h.Ops, h.Fencing, h.Now)
			if st.nfs && v.Node != "" && !st.Offline {
				v.Grace = GraceUnknown
			}
			st.VIPs = append(st.VIPs, v)
		}
	}
	sort.SliceStable(st.VIPs, func(i, j int) bool { return vipOrder[st.VIPs[i].ID] < vipOrder[st.VIPs[j].ID] })
	for _, c := range mon.Clones {
		if !Owned(c.ID) || strings.HasSuffix(c.ID, "-trigger-clone") {
			continue
		}
		s := ServiceStatus{ID: c.ID, Failed: c.Failed}
		add := func(r pacemaker.Resource) {
			if s.Agent == "" {
				s.Agent = r.Agent
			}
			if !r.Active || len(r.Nodes) == 0 {
				s.Stopped++
				return
			}
			s.Running = append(s.Running, r.Nodes[0])
			if r.Role == "Promoted" {
				s.Promoted = append(s.Promoted, r.Nodes[0])
			}
			if r.Failed {
				s.Failed = true
			}
		}
		// A cloned group's instance runs where all its members run.
		var groups []string
		group := map[string]*pacemaker.Resource{}
		for _, r := range mon.Resources {
			switch {
			case r.Clone != c.ID:
			case r.Parent == c.ID:
				add(r)
			case group[r.Parent] == nil:
				first := r
				first.Agent = "group " + r.Parent
				group[r.Parent] = &first
				groups = append(groups, r.Parent)
			default:
				g := group[r.Parent]
				g.Active = g.Active && r.Active
				g.Failed = g.Failed || r.Failed
			}
		}
		for _, g := range groups {
			add(*group[g])
		}
		sort.Strings(s.Running)
		if c.ID == idCTDBClone {
			st.promotableCTDB = c.Promotable
			if len(s.Promoted) > 0 {
				st.CTDBLeader = s.Promoted[0]
			}
		}
		st.Services = append(st.Services, s)
	}
	for _, f := range mon.Failures {
		rsc := f.Resource
		if !Owned(pacemaker.BaseID(rsc)) {
			continue
		}
		op := f.Task
		if iv, err := strconv.Atoi(strings.TrimSuffix(f.Interval, "ms")); err == nil && iv > 0 {
			op += " (every " + (time.Duration(iv) * time.Millisecond).String() + ")"
		}
		st.Failures = append(st.Failures, Failure{Node: f.Node, Resource: rsc, Op: op, Result: f.ExitStatus, Reason: f.ExitReason, When: f.LastRCChange})
	}
	if !st.StonithEnabled {
		st.Warnings = append(st.Warnings, "fencing is disabled (stonith-enabled=false): a node that hangs instead of dying can corrupt data; configure fencing devices for production")
	}
	if !st.SetUp {
		st.Warnings = append(st.Warnings, "storhaug is not set up on this cluster (no "+IDPrefix+"* resources); run storhaug setup")
	}
	if !st.Offline && !st.Quorum {
		st.Warnings = append(st.Warnings, "the cluster has no quorum (or no DC yet): resources are stopped")
	}
	for _, v := range st.VIPs {
		if v.Node == "" {
			st.Warnings = append(st.Warnings, fmt.Sprintf("VIP %s (%s) is not running anywhere", v.Address, v.ID))
		}
	}
	return st
}

// WriteText prints the status as tables.
func (st *Status) WriteText(w io.Writer) {
	name := st.Cluster
	if name == "" {
		name = "(unnamed)"
	}
	src := "live"
	if st.Offline {
		src = "CIB file"
	}
	q := "quorum"
	switch {
	case st.Offline:
		q = "quorum n/a"
	case !st.Quorum:
		q = "NO QUORUM"
	}
	fmt.Fprintf(w, "Cluster %s (%s): DC %s, %s, fencing %s\n", name, src, orDash(st.DC), q, onOff(st.StonithEnabled))
	if d := st.Detection; d != nil {
		fmt.Fprintf(w, "Failure detection: corosync token %d ms + consensus %d ms: a failed node is lost to the cluster about %.1f s after it stops\n",
			d.TokenMS, d.ConsensusMS, d.LostAfterS)
	}
	if st.CTDBLeader != "" {
		fmt.Fprintf(w, "CTDB leader: %s\n", st.CTDBLeader)
	} else if st.promotableCTDB {
		fmt.Fprintln(w, "CTDB leader: NONE (no CTDB instance is promoted)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSTORAGE\tVIPS\tGRACE")
	for _, n := range st.Nodes {
		grace := "-"
		if n.GraceActive != nil {
			grace = "no"
			if *n.GraceActive {
				grace = "IN GRACE"
			}
		}
		dc := ""
		if n.DC {
			dc = " (DC)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", n.Name, dc, n.State, yesNo(n.Storage), orDash(strings.Join(n.VIPs, " ")), grace)
	}
	tw.Flush()
	if len(st.VIPs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VIP\tADDRESS\tON\tHOME\tSTATE\tLAST MOVE\tDOWN\tGRACE")
		atLeast, unknown := false, false
		for _, v := range st.VIPs {
			move, down := st.moveText(v.LastMove)
			atLeast = atLeast || v.LastMove != nil && v.LastMove.AtLeast
			unknown = unknown || v.Grace == GraceUnknown
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.TrimPrefix(v.ID, IDPrefix), v.Address, orDash(v.Node), orDash(v.Home), v.State,
				move, down, orDash(v.Grace))
		}
		tw.Flush()
		if atLeast {
			fmt.Fprintln(w, "(>=: the node failed before it was fenced; the cluster records the fencing, not the failure:")
			fmt.Fprintln(w, " the outage is longer by the time corosync took to declare the node lost)")
		}
		if unknown {
			fmt.Fprintln(w, "(grace unknown: only this node's ganesha can be asked; run storhaug status on the node)")
		}
	}
	if len(st.Services) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tAGENT\tRUNNING ON\tPROMOTED\tSTOPPED")
		for _, s := range st.Services {
			id := strings.TrimPrefix(s.ID, IDPrefix)
			if s.Failed {
				id += " (FAILED)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", id, s.Agent, orDash(strings.Join(s.Running, " ")), orDash(strings.Join(s.Promoted, " ")), s.Stopped)
		}
		tw.Flush()
	}
	if len(st.Failures) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FAILURE ON\tRESOURCE\tOPERATION\tRESULT\tREASON\tWHEN")
		for _, f := range st.Failures {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Node, strings.TrimPrefix(f.Resource, IDPrefix), f.Op, f.Result, orDash(f.Reason), f.When)
		}
		tw.Flush()
		fmt.Fprintln(w, "(storhaug cleanup clears them)")
	}
	for _, m := range st.Warnings {
		fmt.Fprintf(w, "\nWARNING: %s", m)
	}
	if len(st.Warnings) > 0 {
		fmt.Fprintln(w)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "OFF"
}

// SetGrace records whether node's NFS-Ganesha is in grace (nil: it could
// not be asked), for the node and the addresses it serves.
func (st *Status) SetGrace(node string, inGrace *bool) {
	for i := range st.Nodes {
		if st.Nodes[i].Name == node {
			st.Nodes[i].GraceActive = inGrace
		}
	}
	if !st.nfs {
		return
	}
	for i := range st.VIPs {
		if st.VIPs[i].Node != node {
			continue
		}
		switch {
		case inGrace == nil:
			st.VIPs[i].Grace = GraceUnknown
		case *inGrace:
			st.VIPs[i].Grace = GraceHolding
		default:
			st.VIPs[i].Grace = GraceLifted
		}
	}
}

// moveText renders a last move and its outage for the VIP table.
func (st *Status) moveText(m *Move) (move, down string) {
	if m == nil {
		return "-", "-"
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "?"
		}
		if !st.now.IsZero() && st.now.Sub(t) > 20*time.Hour {
			return t.Local().Format("2006-01-02 15:04:05")
		}
		return t.Local().Format("15:04:05")
	}
	why := ""
	switch m.Cause {
	case "":
		return "started " + at(m.Up), "-"
	case "fenced", "lost":
		why = " (" + m.From + " " + m.Cause + ")"
	}
	down = "?"
	if m.DownFor >= 0 {
		down = fmt.Sprintf("%ds", m.DownFor)
		if m.AtLeast {
			down = ">=" + down
		}
	}
	if m.To == "" {
		return m.From + "-> down since " + at(m.Down) + why, down + " so far"
	}
	return m.From + "->" + m.To + " " + at(m.Up) + why, down
}
