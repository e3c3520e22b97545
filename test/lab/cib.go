package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/storhaug/storhaug/setup"
)

// pacemakerNode is the first running node with Pacemaker (n1 first).
func (l *Lab) pacemakerNode() (*Node, error) {
	for _, n := range l.nodes {
		if n.Alive() && n.running("pacemaker-based") {
			return n, nil
		}
	}
	return nil, fmt.Errorf("lab: no node runs Pacemaker")
}

// Cibadmin runs cibadmin with args on the first node running Pacemaker.
func (l *Lab) Cibadmin(ctx context.Context, args ...string) (Result, error) {
	n, err := l.pacemakerNode()
	if err != nil {
		return Result{Code: -1}, err
	}
	return n.Run(ctx, "cibadmin", args...)
}

// ApplyCIB creates the XML in a CIB section ("resources", "constraints",
// "crm_config", ...): cibadmin --create --scope section --xml-text xml.
func (l *Lab) ApplyCIB(ctx context.Context, section, xml string) error {
	_, err := l.Cibadmin(ctx, "--create", "--scope", section, "--xml-text", xml)
	return err
}

// ReplaceCIB replaces a whole CIB section with xml (its root element must be
// the section's, e.g. "<constraints>...</constraints>"). A resources
// section without the lab's fence device (FenceResource) gets it: with
// fencing on and no device, Pacemaker would start nothing.
func (l *Lab) ReplaceCIB(ctx context.Context, section, xml string) error {
	if section == "resources" {
		xml = l.withFence(xml)
	}
	_, err := l.Cibadmin(ctx, "--replace", "--scope", section, "--xml-text", xml)
	return err
}

// withFence adds the lab's fence device to a resources section that lacks it.
func (l *Lab) withFence(xml string) string {
	if l.opts.Pacemaker == Off || strings.Contains(xml, `id="`+FenceResource+`"`) {
		return xml
	}
	t := strings.TrimSpace(xml)
	switch {
	case t == "<resources/>":
		return "<resources>" + l.fenceXML() + "</resources>"
	case strings.HasSuffix(t, "</resources>"):
		return strings.TrimSuffix(t, "</resources>") + l.fenceXML() + "</resources>"
	}
	return xml
}

// QueryCIB returns a CIB section ("" for the whole CIB).
func (l *Lab) QueryCIB(ctx context.Context, section string) (string, error) {
	args := []string{"--query"}
	if section != "" {
		args = append(args, "--scope", section)
	}
	r, err := l.Cibadmin(ctx, args...)
	return r.Stdout, err
}

// ResetCIB puts the CIB back to the lab's seed so that tests sharing a lab
// do not see each other's configuration: it replaces the whole
// configuration section (one cibadmin call) with the seeded cluster
// properties, the bare node list (no permanent node attributes), the lab's
// fence device as the only resource, and no constraints (no rsc_defaults
// or op_defaults); then it
// waits (up to timeout) until Pacemaker has stopped every resource that
// ran, deletes the transient node attributes (promotion scores...), and
// clears the resource history and failures (crm_resource --cleanup). As
// storhaug teardown does, it removes ganesha_trigger's owner records from
// the shared NFS state (they name a previous owner as the node attributes
// of older storhaug releases did, which went with <nodes>).
func (l *Lab) ResetCIB(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var b bytes.Buffer
	b.WriteString("<configuration>")
	b.WriteString(l.crmConfigXML())
	b.WriteString("<nodes>")
	for _, n := range l.nodes {
		fmt.Fprintf(&b, `<node id="%d" uname="%s"/>`, n.index, n.name)
	}
	b.WriteString("</nodes><resources>" + l.fenceXML() + "</resources><constraints/></configuration>")
	if _, err := l.Cibadmin(ctx, "--replace", "--scope", "configuration", "--xml-text", b.String()); err != nil {
		return err
	}
	records, _ := filepath.Glob(filepath.Join(l.SharedDir(), "nfs-ganesha", setup.OwnerRecordGlob))
	for _, f := range records {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	l.logf("reset CIB")
	var last *ClusterState
	err := l.WaitFor(ctx, "every resource stopped after ResetCIB", timeout, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		last = s
		for _, r := range s.Resources {
			if r.Active && r.ID != FenceResource {
				return false, fmt.Errorf("%s still active on %v", r.ID, r.Nodes)
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	n, err := l.pacemakerNode()
	if err != nil {
		return err
	}
	// The node attributes left are transient ones (permanent ones went
	// with <nodes>): promotion scores, attributes tests set. Delete them.
	for _, ns := range last.Nodes {
		names := make([]string, 0, len(ns.Attributes))
		for name := range ns.Attributes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if _, err := n.Run(ctx, "attrd_updater", "--delete", "--name", name, "--node", ns.Name); err != nil {
				return err
			}
		}
	}
	// Always: the status section keeps the operation history of removed
	// resources, which a later resource with the same id would inherit.
	_, err = n.Run(ctx, "crm_resource", "--cleanup")
	return err
}

// LogFiles lists, relative to the node's /var/log, the files the node wrote.
func (n *Node) LogFiles() []string {
	var out []string
	filepath.Walk(n.LogDir(), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && info.Size() > 0 {
			rel, _ := filepath.Rel(n.LogDir(), p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// LogTail returns the last lines of a node log, path relative to the
// node's /var/log ("pacemaker/pacemaker.log", "ctdb/log.ctdb",
// "lab/ctdb.out", ...).
func (n *Node) LogTail(rel string, lines int) string {
	b, err := os.ReadFile(filepath.Join(n.LogDir(), filepath.Clean("/"+rel)))
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(string(b), lines)
}

func tail(s string, lines int) string {
	s = strings.TrimRight(s, "\n")
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// DumpLogs writes the last lines of every log of every node to w (for a
// failed test).
func (l *Lab) DumpLogs(w io.Writer, lines int) {
	for _, n := range l.nodes {
		for _, f := range n.LogFiles() {
			fmt.Fprintf(w, "----- %s:/var/log/%s (last %d lines) -----\n%s\n", n.name, f, lines, n.LogTail(f, lines))
		}
	}
}
