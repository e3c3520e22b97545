package setup

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BuildFor builds the model for the CIB it will be applied to.
func BuildFor(c *Config, cib *Element) *Model {
	return Build(c, Options{LegacyRoles: legacyRoles(cib), NoInfluence: noInfluence(cib)})
}

// XML renders the objects of the model as CIB fragments, section by
// section.
func (m *Model) XML() []byte {
	var b bytes.Buffer
	if len(m.Properties) > 0 {
		b.WriteString("<crm_config>\n")
		s := nvset("cluster_property_set", IDPrefix+"options", m.Properties)
		s.Set("score", "INFINITY")
		s.write(&b, 1, false)
		b.WriteString("</crm_config>\n")
	}
	b.WriteString("<nodes>\n")
	for _, n := range m.Nodes {
		e := E("node", "uname", n)
		if a := m.NodeAttrs[n]; len(a) > 0 {
			var pairs [][2]string
			for k, v := range a {
				pairs = append(pairs, [2]string{k, v})
			}
			sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
			e.Add(nvset("instance_attributes", xmlID(IDPrefix+"node-"+n), pairs))
		}
		e.write(&b, 1, false)
	}
	b.WriteString("</nodes>\n<resources>\n")
	for _, r := range m.Resources {
		r.write(&b, 1, false)
	}
	b.WriteString("</resources>\n<constraints>\n")
	for _, c := range m.Constraints {
		c.write(&b, 1, false)
	}
	b.WriteString("</constraints>\n")
	return b.Bytes()
}

func shq(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,/:=@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func nvArgs(set *Element) []string {
	var out []string
	if set == nil {
		return nil
	}
	for _, nv := range set.Children {
		if nv.Name == "nvpair" {
			out = append(out, shq(nv.Get("name")+"="+nv.Get("value")))
		}
	}
	return out
}

func pcsAgent(p *Element) string {
	s := p.Get("class") + ":"
	if pr := p.Get("provider"); pr != "" {
		s += pr + ":"
	}
	return s + p.Get("type")
}

func pcsPrimitive(p *Element, extra ...string) string {
	// --no-default-ops: pcs would add every action the agent's meta-data
	// advertises (notify, for one) as an operation; setup writes only these.
	args := []string{"pcs", "-f", "storhaug.cib", "resource", "create", "--no-default-ops", p.Get("id"), pcsAgent(p)}
	args = append(args, nvArgs(p.Child("instance_attributes"))...)
	if ops := p.Child("operations"); ops != nil {
		for _, op := range ops.Children {
			a := []string{"op", op.Get("name"), "interval=" + op.Get("interval"), "timeout=" + op.Get("timeout")}
			if r := op.Get("role"); r != "" {
				a = append(a, "role="+r)
			}
			args = append(args, a...)
		}
	}
	if meta := nvArgs(p.Child("meta_attributes")); len(meta) > 0 {
		args = append(append(args, "meta"), meta...)
	}
	return strings.Join(append(args, extra...), " ")
}

// PCS returns pcs commands that would build the same configuration (for
// admins who know pcs; storhaug itself does not use it).
func (m *Model) PCS() []string {
	var out []string
	pcs := "pcs -f storhaug.cib "
	out = append(out, "pcs cluster cib storhaug.cib")
	for _, p := range m.Properties {
		out = append(out, pcs+"property set "+shq(p[0]+"="+p[1]))
	}
	for _, n := range m.Nodes {
		var kv []string
		for k, v := range m.NodeAttrs[n] {
			kv = append(kv, shq(k+"="+v))
		}
		sort.Strings(kv)
		if len(kv) > 0 {
			out = append(out, pcs+"node attribute "+n+" "+strings.Join(kv, " "))
		}
	}
	for _, r := range m.Resources {
		switch r.Name {
		case "primitive":
			out = append(out, pcsPrimitive(r))
		case "clone":
			meta := nvArgs(r.Child("meta_attributes"))
			var promotable bool
			var rest []string
			for _, a := range meta {
				if a == "promotable=true" {
					promotable = true
					continue
				}
				rest = append(rest, a)
			}
			kind := "clone"
			if promotable {
				kind = "promotable"
			}
			if p := r.Child("primitive"); p != nil {
				out = append(out, pcsPrimitive(p, append([]string{kind, r.Get("id")}, rest...)...))
			} else if g := r.Child("group"); g != nil {
				for _, p := range g.Children {
					if p.Name == "primitive" {
						out = append(out, pcsPrimitive(p, "--group", g.Get("id")))
					}
				}
				out = append(out, pcs+"resource "+kind+" "+g.Get("id")+" "+strings.Join(rest, " "))
			}
		}
	}
	for _, c := range m.Constraints {
		id := c.Get("id")
		switch c.Name {
		case "rsc_location":
			if n := c.Get("node"); n != "" {
				out = append(out, fmt.Sprintf("%sconstraint location add %s %s %s %s", pcs, id, c.Get("rsc"), n, c.Get("score")))
				continue
			}
			rule := c.Child("rule")
			args := []string{pcs + "constraint location " + c.Get("rsc") + " rule", "constraint-id=" + id, "id=" + rule.Get("id")}
			if d := c.Get("resource-discovery"); d != "" {
				args = append(args, "resource-discovery="+d)
			}
			args = append(args, "score="+rule.Get("score"))
			var exprs []string
			for _, e := range rule.Children {
				switch e.Get("operation") {
				case "not_defined", "defined":
					exprs = append(exprs, e.Get("operation")+" "+e.Get("attribute"))
				default:
					attr := e.Get("attribute")
					if strings.HasPrefix(attr, "#") { // a shell comment unquoted
						attr = "'" + attr + "'"
					}
					exprs = append(exprs, attr+" "+e.Get("operation")+" "+e.Get("value"))
				}
			}
			op := " " + rule.Get("boolean-op") + " "
			if op == "  " {
				op = " and "
			}
			out = append(out, strings.Join(args, " ")+" "+strings.Join(exprs, op))
		case "rsc_colocation":
			opts := ""
			if i := c.Get("influence"); i != "" {
				opts = " influence=" + i
			}
			out = append(out, fmt.Sprintf("%sconstraint colocation add %s with %s %s%s id=%s", pcs, c.Get("rsc"), c.Get("with-rsc"), c.Get("score"), opts, id))
		case "rsc_order":
			first, then := c.Get("first"), c.Get("then")
			if a := c.Get("first-action"); a != "" {
				first = a + " " + first
			}
			if a := c.Get("then-action"); a != "" {
				then = a + " " + then
			}
			out = append(out, fmt.Sprintf("%sconstraint order %s then %s kind=%s id=%s", pcs, first, then, c.Get("kind"), id))
		}
	}
	out = append(out, "pcs cluster cib-push storhaug.cib --config")
	return out
}

// PlanStop returns a copy of cur in which every storhaug resource has
// target-role=Stopped, so that Pacemaker stops them in dependency order
// before teardown deletes them.
func PlanStop(cur *Element, cfg *Config) (*Element, []Change, error) {
	if cfg != nil {
		if name := ClusterName(cur); name != "" && name != cfg.Name {
			return nil, nil, fmt.Errorf("this cluster is %q but %s says HA_NAME=%q: wrong cluster or wrong configuration", name, cfg.File, cfg.Name)
		}
	}
	next := cur.Clone()
	var changes []Change
	rs := next.Find("configuration", "resources")
	if rs == nil {
		return next, nil, nil
	}
	for _, r := range rs.Children {
		id := r.Get("id")
		if r.Comment || !Owned(id) {
			continue
		}
		meta := r.Child("meta_attributes")
		if meta == nil {
			meta = E("meta_attributes", "id", id+"-meta_attributes")
			r.Children = append([]*Element{meta}, r.Children...)
		}
		found := false
		for _, nv := range meta.Children {
			if nv.Get("name") == "target-role" {
				found = true
				if nv.Get("value") != "Stopped" {
					nv.Set("value", "Stopped")
					changes = append(changes, Change{"update", r.Name, id})
				}
			}
		}
		if !found {
			meta.Add(E("nvpair", "id", meta.Get("id")+"-target-role", "name", "target-role", "value", "Stopped"))
			changes = append(changes, Change{"update", r.Name, id})
		}
	}
	return next, changes, nil
}

// WaitSettle waits until the cluster has no more actions to take (or ctx
// ends): crm_resource --wait.
func WaitSettle(ctx context.Context, r Runner) error {
	secs := 60
	if dl, ok := ctx.Deadline(); ok {
		secs = int(time.Until(dl).Seconds())
		if secs < 1 {
			secs = 1
		}
	}
	if _, err := r.Run(ctx, nil, "crm_resource", "--wait", "--timeout", strconv.Itoa(secs)+"s"); err != nil {
		return fmt.Errorf("waiting for the cluster to settle: %w", err)
	}
	return nil
}
