package main

// The agents and storhaug setup as the admin's own tools see them: pcs and
// crmsh, real clients that find agents only under /usr/lib/ocf/resource.d/
// (ocftest.InstallSystem links ours there for the test) and read their
// meta-data through crm_resource --show-metadata, as Pacemaker 2.1 runs it
// (OCF 1.1). Everything works on CIB files (pcs -f, CIB_file): no cluster.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/setup"
)

// clientTools returns the paths of pcs and crm, and checks the tools the
// tests run beside them.
func clientTools(t *testing.T) (pcs, crm string) {
	t.Helper()
	pcs = need.Tool(t, "pcs", "pcs")
	crm = need.Tool(t, "crm", "crmsh")
	need.Tool(t, "cibadmin", "pacemaker-cli-utils")
	need.Tool(t, "crm_resource", "pacemaker-cli-utils")
	return pcs, crm
}

// runTool runs a client and returns its combined output and exit status.
func runTool(t *testing.T, env []string, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return string(out), code
}

// emptyCIB writes an empty CIB, with the named nodes in it, to a file of
// its own and returns its path.
func emptyCIB(t *testing.T, nodes ...string) string {
	t.Helper()
	out, err := exec.Command("cibadmin", "--empty").Output()
	if err != nil {
		t.Fatalf("cibadmin --empty: %v", err)
	}
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		node := fmt.Sprintf(`<node id="%d" uname="%s"/>`, i+1, n)
		if out, code := runTool(t, []string{"CIB_file=" + f}, "cibadmin", "--create", "-o", "nodes", "-X", node); code != 0 {
			t.Fatalf("cibadmin --create %s: %s", node, out)
		}
	}
	return f
}

// sampleValue is a valid value of a parameter for pcs resource create.
func sampleValue(p ocf.Param) string {
	switch {
	case p.Default != "":
		return p.Default
	case p.Type == ocf.Select && len(p.Options) > 0:
		return p.Options[0]
	case p.Type == ocf.Integer:
		return "1"
	case p.Type == ocf.Boolean:
		return "true"
	case p.Name == "ip":
		return "198.51.100.5"
	}
	return "/run/storhaug-test/" + p.Name
}

// pcsResult is what one pcs command line did.
type pcsResult struct {
	Line   string `json:"line"`
	Code   int    `json:"code"`
	Output string `json:"output"`
}

// pcsBatch runs pcs command lines in dir through pcs's own entry point, in
// one Python process (testdata/pcs-batch.py): pcs costs 1-3 s a process to
// start here, and these tests run dozens of commands.
// TestPcsBatchIsPcs checks that the batch does what pcs does.
func pcsBatch(t *testing.T, dir string, lines []string) []pcsResult {
	t.Helper()
	need.File(t, "/usr/bin/python3", "python3")
	script, err := filepath.Abs("testdata/pcs-batch.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-Es", script)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pcs-batch: %v\n%s", err, stderr.Bytes())
	}
	var res []pcsResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(lines) {
		t.Fatalf("pcs-batch: %d results for %d lines (%v):\n%s\n%s", len(res), len(lines), err, out, stderr.Bytes())
	}
	return res
}

// agentCase is the pcs commands the test runs for one agent and what it
// expects of them.
type agentCase struct {
	a          *ocf.Agent
	cib        string // the CIB file of this agent's creates
	params     map[string]string
	promotable bool
	describe   int   // index of pcs resource describe
	valid      int   // of the valid create
	unknown    int   // of the create with an unknown parameter
	missing    []int // of the creates without one required parameter each
	required   []string
}

// TestAgentsInPcsAndCrmsh: for every agent, pcs resource describe and crm
// ra info succeed and show every declared parameter; pcs resource create
// on a CIB file takes a valid resource with exactly its parameters and
// refuses an unknown and a missing required parameter; a promotable CTDB
// gets the promoted monitor with role Promoted as declared.
func TestAgentsInPcsAndCrmsh(t *testing.T) {
	_, crm := clientTools(t)
	names := needAgents(t)
	bin := ocftest.Binary(t)
	ocftest.InstallSystem(t, bin)
	// What Pacemaker gets: crm_resource --show-metadata runs the agent as
	// the cluster does (OCF 1.1), and it is what storhaug meta-data shows
	// for Pacemaker's environment.
	for _, n := range names {
		got, code := runTool(t, nil, "crm_resource", "--show-metadata", "ocf:storhaug:"+n)
		want, wcode := runTool(t, nil, bin, "meta-data", "--ocf-1.1", n)
		if code != 0 || wcode != 0 || got != want {
			t.Errorf("crm_resource --show-metadata ocf:storhaug:%s (exit %d) is not storhaug meta-data --ocf-1.1 %s (exit %d): %s",
				n, code, n, wcode, firstDiff(want, got))
		}
	}
	var lines []string
	add := func(l string) int { lines = append(lines, l); return len(lines) - 1 }
	var cases []*agentCase
	for _, n := range names {
		a := agents.Lookup(n)
		c := &agentCase{a: a, cib: emptyCIB(t), params: map[string]string{}, promotable: n == "CTDB"}
		full := "ocf:storhaug:" + n
		// every required parameter and one optional one
		for _, p := range a.Params {
			if p.Required {
				c.params[p.Name] = sampleValue(p)
				c.required = append(c.required, p.Name)
			}
		}
		for _, p := range a.Params {
			if !p.Required && p.Deprecated == "" {
				c.params[p.Name] = sampleValue(p)
				break
			}
		}
		var args []string
		for k, v := range c.params {
			args = append(args, shellQuote(k+"="+v))
		}
		sort.Strings(args)
		create := "pcs -f " + shellQuote(c.cib) + " resource create "
		c.describe = add("pcs resource describe " + full)
		valid := create + "r-valid " + full + " " + strings.Join(args, " ")
		if c.promotable {
			valid += " promotable"
		}
		c.valid = add(valid)
		c.unknown = add(create + "r-unknown " + full + " " + strings.Join(args, " ") + " no_such_param=1")
		for _, r := range c.required {
			var rest []string
			for _, arg := range args {
				if !strings.HasPrefix(arg, r+"=") {
					rest = append(rest, arg)
				}
			}
			c.missing = append(c.missing, add(create+"r-missing-"+r+" "+full+" "+strings.Join(rest, " ")))
		}
		cases = append(cases, c)
	}
	res := pcsBatch(t, t.TempDir(), lines)
	t.Run("group", func(t *testing.T) { // the links stay until every agent is done
		for _, c := range cases {
			t.Run(c.a.Name, func(t *testing.T) {
				t.Parallel()
				checkAgentInClients(t, crm, c, res)
			})
		}
	})
}

// crmComplaint is a warning or error line of crmsh's own (it may colour the
// word).
var crmComplaint = regexp.MustCompile(`(?m)^(\x1b\[[0-9;]*m)?(ERROR|WARNING)(\x1b\[[0-9;]*m)?:`)

func checkAgentInClients(t *testing.T, crm string, c *agentCase, res []pcsResult) {
	a := c.a
	full := "ocf:storhaug:" + a.Name
	d := res[c.describe]
	if d.Code != 0 {
		t.Fatalf("%s: exit %d\n%s", d.Line, d.Code, d.Output)
	}
	for _, p := range a.Params {
		// "  NAME: description" or "  NAME (required) (unique): ..."
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(p.Name) + `( \([a-z ]+\))*:`).MatchString(d.Output) {
			t.Errorf("%s does not show parameter %s:\n%s", d.Line, p.Name, d.Output)
		}
	}
	out, code := runTool(t, nil, crm, "ra", "info", full)
	if code != 0 || crmComplaint.MatchString(out) {
		t.Fatalf("crm ra info %s: exit %d\n%s", full, code, out)
	}
	for _, p := range a.Params {
		// "NAME (type, [default]): shortdesc", required ones marked "NAME*"
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p.Name) + `\*? \(`).MatchString(out) {
			t.Errorf("crm ra info %s does not show parameter %s:\n%s", full, p.Name, out)
		}
	}

	v := res[c.valid]
	if v.Code != 0 {
		t.Fatalf("%s: exit %d\n%s", v.Line, v.Code, v.Output)
	}
	doc, err := os.ReadFile(c.cib)
	if err != nil {
		t.Fatal(err)
	}
	root, err := setup.ParseXML(doc)
	if err != nil {
		t.Fatal(err)
	}
	var prim, clone *setup.Element
	root.Walk(func(e *setup.Element) bool {
		if e.Name == "clone" && e.Child("primitive") != nil && e.Child("primitive").Get("id") == "r-valid" {
			clone = e
		}
		if e.Name == "primitive" && e.Get("id") == "r-valid" {
			prim = e
		}
		return true
	})
	if prim == nil || prim.Get("class") != "ocf" || prim.Get("type") != a.Name || prim.Get("provider") != "storhaug" {
		t.Fatalf("pcs did not create r-valid as %s:\n%s", full, doc)
	}
	got := map[string]string{}
	if ia := prim.Child("instance_attributes"); ia != nil {
		for _, nv := range ia.Children {
			got[nv.Get("name")] = nv.Get("value")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(c.params) {
		t.Errorf("r-valid has instance attributes %v, want %v", got, c.params)
	}
	if c.promotable {
		var want *ocf.Action
		for i := range a.Actions {
			if a.Actions[i].Name == "monitor" && a.Actions[i].Role == "Promoted" {
				want = &a.Actions[i]
			}
		}
		if want == nil {
			t.Fatal("CTDB declares no promoted monitor")
		}
		found := false
		for _, op := range prim.Child("operations").Children {
			if op.Get("name") == "monitor" && op.Get("role") == "Promoted" {
				found = true
				if d, err := time.ParseDuration(op.Get("interval")); err != nil || d != want.Interval {
					t.Errorf("promoted monitor interval %q, declared %v", op.Get("interval"), want.Interval)
				}
			}
		}
		if !found {
			t.Errorf("promotable CTDB created by pcs has no monitor with role Promoted:\n%s", doc)
		}
		if clone == nil || !strings.Contains(string(clone.XML()), `name="promotable" value="true"`) {
			t.Errorf("pcs ... promotable did not make a promotable clone:\n%s", doc)
		}
	}

	// Refused: an unknown parameter, and each missing required one.
	if u := res[c.unknown]; u.Code == 0 || !strings.Contains(u.Output, "'no_such_param'") {
		t.Errorf("%s: exit %d, want a refusal naming no_such_param\n%s", u.Line, u.Code, u.Output)
	}
	for i, r := range c.required {
		m := res[c.missing[i]]
		if m.Code == 0 || !strings.Contains(m.Output, "required resource option '"+r+"' is missing") {
			t.Errorf("%s: exit %d, want a refusal naming %s\n%s", m.Line, m.Code, r, m.Output)
		}
	}
	if b, _ := os.ReadFile(c.cib); bytes.Contains(b, []byte(`id="r-unknown"`)) || bytes.Contains(b, []byte(`id="r-missing-`)) {
		t.Errorf("pcs created a refused resource:\n%s", b)
	}
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestSetupDryRunPcsIsSetup: the pcs commands `storhaug setup --dry-run`
// prints, run by pcs against a CIB file with the cluster's nodes in it,
// build the same configuration as `storhaug setup` itself writes into
// another copy of that file: the same resources with the same agents,
// instance and meta attributes and operations, the same node attributes,
// cluster properties (as Pacemaker reads them) and constraints. Ids of nested objects (nvpairs,
// operations, rules, expressions, attribute sets) are left out of the
// comparison; those of resources and constraints, which the pcs commands
// name, are compared. So is everything else except the description
// storhaug gives its resources as a label (pcs resource create cannot set
// it; storhaug recognises its objects by their "storhaug-" ids).
func TestSetupDryRunPcsIsSetup(t *testing.T) {
	clientTools(t)
	bin := ocftest.Binary(t)
	ocftest.InstallSystem(t, bin)
	example, err := os.ReadFile("examples/storhaug.conf")
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]string{
		// the sample: promotable CTDB managing Samba, ganesha, 3 VIPs
		"example": string(example),
		// everything else setup can make: CTDB with a lock, Samba by
		// systemd in a cloned group, a gluster state volume, an IPv6 VIP,
		// storage nodes a subset, fencing off, extra agent parameters
		"variants": `HA_NAME="storhaug"
HA_CLUSTER_NODES="n1,n2,n3"
STORAGE_NODES="n1,n2"
HA_VIPS="198.51.100.101/24 2001:db8::7/64"
HA_SERVICES="nfs smb"
HA_SMB_MANAGER=systemd
HA_CTDB_MODE=lock
HA_NFS_TYPE=glusterfs
HA_NFS_VOL=localhost:/gv0
HA_VIP_NIC=eth1
HA_VIP_TICKLE=yes
HA_STONITH_ENABLED=false
`,
	}
	t.Run("group", func(t *testing.T) {
		for name, conf := range configs {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				checkDryRunPcs(t, bin, conf)
			})
		}
	})
}

func checkDryRunPcs(t *testing.T, bin, conf string) {
	dir := t.TempDir()
	confFile := filepath.Join(dir, "storhaug.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(confFile, filepath.Join(dir, "none"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := cfg.ClusterNodes
	// The cluster's CIB: its nodes, nothing else.
	base, err := os.ReadFile(emptyCIB(t, nodes...))
	if err != nil {
		t.Fatal(err)
	}
	bySetup := filepath.Join(dir, "setup.cib")
	os.WriteFile(bySetup, base, 0o600)
	env := []string{"CIB_file=" + bySetup}
	args := []string{bin, "setup", "-c", confFile, "--config-dir", filepath.Join(dir, "none")}
	dry, code := runTool(t, env, append(args, "--dry-run")...)
	if code != 0 {
		t.Fatalf("setup --dry-run: exit %d\n%s", code, dry)
	}
	if out, code := runTool(t, env, args...); code != 0 {
		t.Fatalf("setup: exit %d\n%s", code, out)
	}

	// The pcs commands, between "pcs cluster cib storhaug.cib" (the live
	// CIB: here the same base) and "pcs cluster cib-push storhaug.cib
	// --config" (here the file is the result).
	var cmds []string
	for _, l := range strings.Split(dry, "\n") {
		if strings.HasPrefix(l, "pcs ") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) < 3 || cmds[0] != "pcs cluster cib storhaug.cib" || cmds[len(cmds)-1] != "pcs cluster cib-push storhaug.cib --config" {
		t.Fatalf("dry-run's pcs commands do not start with pcs cluster cib and end with cib-push:\n%s", strings.Join(cmds, "\n"))
	}
	byPcs := filepath.Join(dir, "storhaug.cib")
	os.WriteFile(byPcs, base, 0o600)
	cmds = cmds[1 : len(cmds)-1]
	for i, c := range cmds {
		// pcs checks an agent by its meta-data, which Pacemaker asks
		// systemd for when the agent is a systemd unit: no systemd runs
		// here (nor in CI's container), so those creates are forced.
		if strings.Contains(c, " resource create ") && strings.Contains(c, " systemd:") {
			cmds[i] = c + " --force"
		}
	}
	for _, r := range pcsBatch(t, dir, cmds) {
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", r.Line, r.Code, r.Output)
		}
	}

	want, got := cibFacts(t, bySetup), cibFacts(t, byPcs)
	if missing, extra := factDiff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("the dry-run's pcs commands do not build what setup writes\nonly in setup's CIB:\n  %s\nonly in pcs's CIB:\n  %s",
			strings.Join(append(missing, "."), "\n  "), strings.Join(append(extra, "."), "\n  "))
	}
}

// cibFacts flattens a CIB file's configuration into one line per element:
// its path (element names, with the id of resources and constraints, the
// uname of nodes and the position of a group's members, whose order
// matters) and its attributes, sorted, with defaults made explicit and
// nested ids left out; and one line per cluster property, with the value
// Pacemaker takes.
func cibFacts(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	root, err := setup.ParseXML(b)
	if err != nil {
		t.Fatal(err)
	}
	conf := root.Child("configuration")
	if conf == nil {
		t.Fatalf("%s has no configuration", file)
	}
	var facts []string
	var walk func(e *setup.Element, path string)
	walk = func(e *setup.Element, path string) {
		if e.Comment {
			return
		}
		attrs := map[string]string{}
		for _, a := range e.Attrs {
			attrs[a.Name.Local] = a.Value
		}
		key := e.Name
		switch e.Name {
		case "primitive", "clone", "group", "bundle", "rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket":
			key += "[" + attrs["id"] + "]"
		case "node":
			key += "[" + attrs["uname"] + "]"
		case "nvpair":
			key += "[" + attrs["name"] + "]"
		}
		delete(attrs, "id")
		delete(attrs, "description") // a label; see TestSetupDryRunPcsIsSetup
		switch e.Name {
		case "rsc_order":
			setDefault(attrs, "first-action", "start")
			setDefault(attrs, "then-action", "start")
			setDefault(attrs, "kind", "Mandatory")
		case "rsc_colocation":
			setDefault(attrs, "rsc-role", "Started")
			setDefault(attrs, "with-rsc-role", "Started")
		case "rule":
			setDefault(attrs, "boolean-op", "and")
		case "op", "rsc_location":
			switch attrs["role"] {
			case "Master":
				attrs["role"] = "Promoted"
			case "Slave":
				attrs["role"] = "Unpromoted"
			}
		}
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		line := path + key
		for _, k := range keys {
			line += " " + k + "=" + attrs[k]
		}
		facts = append(facts, line)
		for i, c := range e.Children {
			p := path + key + "/"
			if e.Name == "group" {
				p += fmt.Sprintf("#%d/", i)
			}
			walk(c, p)
		}
	}
	for _, c := range conf.Children {
		if c.Name != "crm_config" {
			walk(c, "")
			continue
		}
		// Cluster properties as Pacemaker reads them (setup.Property):
		// setup keeps its own set, pcs property set writes into
		// cib-bootstrap-options.
		seen := map[string]bool{}
		for _, set := range c.Children {
			for _, nv := range set.Children {
				if n := nv.Get("name"); nv.Name == "nvpair" && !seen[n] {
					seen[n] = true
					facts = append(facts, "property "+n+"="+setup.Property(root, n))
				}
			}
		}
	}
	sort.Strings(facts)
	return facts
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// factDiff returns the lines only in want and only in got (as multisets).
func factDiff(want, got []string) (missing, extra []string) {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	for l, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, l)
		}
		for ; n < 0; n++ {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// TestPcsBatchIsPcs: pcsBatch does what pcs itself does, commands that fail
// included (pcs keeps state between commands in one process, which the
// batch resets): the same lines run by /usr/sbin/pcs, one process each,
// exit alike, print alike and leave the same CIB.
func TestPcsBatchIsPcs(t *testing.T) {
	pcs, _ := clientTools(t)
	ocftest.InstallSystem(t, ocftest.Binary(t))
	lines := []string{
		"pcs -f cib.xml resource create --no-default-ops ctdb ocf:storhaug:CTDB op monitor interval=10s timeout=30s promotable ctdb-clone promoted-max=1",
		"pcs -f cib.xml resource create bad ocf:storhaug:IPaddr3 no_such_param=1",
		"pcs -f cib.xml resource create vip ocf:storhaug:IPaddr3 ip=198.51.100.7 meta resource-stickiness=0",
		"pcs -f cib.xml constraint colocation add vip with ctdb-clone INFINITY id=vip-with-ctdb",
	}
	base, err := os.ReadFile(emptyCIB(t))
	if err != nil {
		t.Fatal(err)
	}
	batchDir, pcsDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(batchDir, "cib.xml"), base, 0o600)
	os.WriteFile(filepath.Join(pcsDir, "cib.xml"), base, 0o600)
	res := pcsBatch(t, batchDir, lines)
	for i, l := range lines {
		cmd := exec.Command(pcs, strings.Fields(l)[1:]...)
		cmd.Dir = pcsDir
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != res[i].Code || string(out) != res[i].Output {
			t.Errorf("%s:\npcs: exit %d\n%s\nbatch: exit %d\n%s", l, code, out, res[i].Code, res[i].Output)
		}
	}
	if res[1].Code == 0 || res[2].Code != 0 {
		t.Errorf("the batch did not fail the bad create and then run the next one: %+v", res)
	}
	want, got := cibFacts(t, filepath.Join(pcsDir, "cib.xml")), cibFacts(t, filepath.Join(batchDir, "cib.xml"))
	if missing, extra := factDiff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("pcs and the batch built different CIBs\nonly pcs's: %v\nonly the batch's: %v", missing, extra)
	}
}
