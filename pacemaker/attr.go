package pacemaker

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
)

// SetPromotionScore sets, for resource rsc on node ("" for this node),
// the promotion score Pacemaker chooses the promoted instance by
// (crm_attribute --promotion).
func SetPromotionScore(ctx context.Context, r Runner, rsc, node string, score int) error {
	return attr(ctx, r, node, "-p", rsc, "-v", strconv.Itoa(score))
}

// ClearPromotionScore removes that score: the node is no candidate.
func ClearPromotionScore(ctx context.Context, r Runner, rsc, node string) error {
	return attr(ctx, r, node, "-p", rsc, "-D")
}

// SetNodeAttr sets a permanent node attribute of node.
func SetNodeAttr(ctx context.Context, r Runner, node, name, value string) error {
	return attr(ctx, r, node, "--type", "nodes", "--name", name, "--update", value)
}

func attr(ctx context.Context, r Runner, node string, args ...string) error {
	if node != "" {
		args = append(args, "-N", node)
	}
	if _, err := r.Run(ctx, nil, "crm_attribute", args...); err != nil {
		return fmt.Errorf("crm_attribute: %w", err)
	}
	return nil
}

// NodeAttrs reads the permanent attributes of every node from the CIB's
// nodes section: node name -> attribute -> value.
func NodeAttrs(ctx context.Context, r Runner) (map[string]map[string]string, error) {
	out, err := r.Run(ctx, nil, "cibadmin", "--query", "--scope", "nodes")
	if err != nil {
		return nil, fmt.Errorf("cibadmin --query --scope nodes: %w", err)
	}
	return ParseNodeAttrs(out)
}

// ParseNodeAttrs reads the nodes section of a CIB (or a CIB holding one).
func ParseNodeAttrs(nodesXML []byte) (map[string]map[string]string, error) {
	type node struct {
		Uname string `xml:"uname,attr"`
		Attrs []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"instance_attributes>nvpair"`
	}
	var doc struct {
		XMLName xml.Name
		Nodes   []node `xml:"node"`
		Config  []node `xml:"configuration>nodes>node"`
	}
	if err := xml.Unmarshal(nodesXML, &doc); err != nil {
		return nil, fmt.Errorf("CIB nodes section: %w", err)
	}
	out := map[string]map[string]string{}
	for _, n := range append(doc.Nodes, doc.Config...) {
		m := out[n.Uname]
		if m == nil {
			m = map[string]string{}
			out[n.Uname] = m
		}
		for _, a := range n.Attrs {
			m[a.Name] = a.Value
		}
	}
	return out, nil
}

// SetTransientAttr sets a node attribute of node that lasts until the node
// leaves the cluster (crm_attribute --lifetime reboot).
func SetTransientAttr(ctx context.Context, r Runner, node, name, value string) error {
	return attr(ctx, r, node, "--lifetime", "reboot", "--name", name, "--update", value)
}
