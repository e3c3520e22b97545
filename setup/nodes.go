package setup

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// Edit is a change to the configuration: new values for keys (a key
// mapped to "" keeps its assignment, emptied).
type Edit map[string]string

// apply returns the configuration with the edit applied and validated.
func (c *Config) apply(e Edit) (*Config, error) {
	var settings []Setting
	for _, k := range c.settingOrder {
		s := c.Settings[k]
		if v, ok := e[k]; ok {
			s.Value = v
		}
		settings = append(settings, s)
	}
	var added []string
	for k := range e {
		if _, ok := c.Settings[k]; !ok {
			added = append(added, k)
		}
	}
	sort.Strings(added)
	for _, k := range added {
		settings = append(settings, Setting{Key: k, Value: e[k], File: c.File})
	}
	n, err := FromSettings(c.File, settings)
	if err != nil {
		return nil, err
	}
	n.File, n.Dir = c.File, c.Dir
	return n, nil
}

// AddNode returns the edit that adds node (as a storage node) and, if vip
// is not "", the address vip with node as its home.
func (c *Config) AddNode(node, vip string) (Edit, *Config, error) {
	for _, n := range c.ClusterNodes {
		if n == node {
			return nil, nil, fmt.Errorf("node %s is already in HA_CLUSTER_NODES (%s)", node, c.where("HA_CLUSTER_NODES"))
		}
	}
	e := Edit{"HA_CLUSTER_NODES": strings.Join(append(append([]string(nil), c.ClusterNodes...), node), ",")}
	if _, set := c.Settings["STORAGE_NODES"]; set {
		e["STORAGE_NODES"] = strings.Join(append(append([]string(nil), c.StorageNodes...), node), ",")
	}
	if vip != "" {
		var vips []string
		for _, v := range c.VIPs {
			vips = append(vips, v.String())
		}
		e["HA_VIPS"] = strings.Join(append(vips, vip), " ")
		if len(c.VIPNodes) > 0 {
			e["HA_VIP_NODES"] = strings.Join(append(append([]string(nil), c.VIPNodes...), node), ",")
		} else if len(c.VIPs) != len(c.StorageNodes) {
			// Homes by position would no longer give the new address
			// to the new node: name every home.
			e["HA_VIP_NODES"] = strings.Join(append(c.Homes(), node), ",")
		}
	}
	n, err := c.apply(e)
	return e, n, err
}

// NodeVIPs returns the addresses whose home is node: those HA_VIP_NODES
// gives it or, without HA_VIP_NODES, the one at its position when there is
// one address per storage node.
func (c *Config) NodeVIPs(node string) []VIP {
	var out []VIP
	if len(c.VIPNodes) == 0 && len(c.VIPs) != len(c.StorageNodes) {
		return nil
	}
	for i, v := range c.VIPs {
		if c.VIPHome(i) == node {
			out = append(out, v)
		}
	}
	return out
}

// RemoveNode returns the edit that removes node and its addresses.
func (c *Config) RemoveNode(node string) (Edit, []VIP, *Config, error) {
	found := false
	var nodes []string
	for _, n := range c.ClusterNodes {
		if n == node {
			found = true
		} else {
			nodes = append(nodes, n)
		}
	}
	if !found {
		return nil, nil, nil, fmt.Errorf("node %s is not in HA_CLUSTER_NODES (%s)", node, c.where("HA_CLUSTER_NODES"))
	}
	gone := c.NodeVIPs(node)
	e := Edit{"HA_CLUSTER_NODES": strings.Join(nodes, ",")}
	if _, set := c.Settings["STORAGE_NODES"]; set {
		var s []string
		for _, n := range c.StorageNodes {
			if n != node {
				s = append(s, n)
			}
		}
		e["STORAGE_NODES"] = strings.Join(s, ",")
	}
	if len(gone) > 0 || len(c.VIPNodes) > 0 {
		isGone := map[string]bool{}
		for _, v := range gone {
			isGone[v.Addr.String()] = true
		}
		var vips, homes []string
		for i, v := range c.VIPs {
			if isGone[v.Addr.String()] {
				continue
			}
			vips = append(vips, v.String())
			homes = append(homes, c.VIPHome(i))
		}
		e["HA_VIPS"] = strings.Join(vips, " ")
		if len(c.VIPNodes) > 0 {
			e["HA_VIP_NODES"] = strings.Join(homes, ",")
		}
	}
	n, err := c.apply(e)
	return e, gone, n, err
}

func (c *Config) where(key string) string {
	if s, ok := c.Settings[key]; ok {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return c.File
}

// Save writes the edit into the files the keys were read from: each
// assignment is rewritten where it stands (the one in effect, so drop-ins
// keep overriding), keys not set anywhere are appended to the main file.
// Each file is replaced atomically.
func (c *Config) Save(e Edit) error {
	type lineEdit struct {
		line int
		text string
	}
	perFile := map[string][]lineEdit{}
	var appends []string
	var keys []string
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s, ok := c.Settings[k]; ok && s.Line > 0 {
			perFile[s.File] = append(perFile[s.File], lineEdit{s.Line, Format(k, e[k])})
		} else {
			appends = append(appends, Format(k, e[k]))
		}
	}
	if _, ok := perFile[c.File]; !ok && len(appends) > 0 {
		perFile[c.File] = nil
	}
	var files []string
	for f := range perFile {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		for _, le := range perFile[f] {
			if le.line-1 < len(lines) {
				lines[le.line-1] = le.text
			}
		}
		out := strings.Join(lines, "\n")
		if f == c.File && len(appends) > 0 {
			if out != "" && !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			out += strings.Join(appends, "\n") + "\n"
		}
		if !bytes.Equal([]byte(out), data) {
			if err := atomicfile.Write(f, []byte(out), st.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}
