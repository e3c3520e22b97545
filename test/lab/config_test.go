package lab

import (
	"strings"
	"testing"

	"github.com/storhaug/storhaug/ganesha"
)

func testLab(nodes int) *Lab {
	o := Options{Prefix: "unit", Nodes: nodes}
	o.normalize()
	l := &Lab{opts: o, root: Root(o.Prefix)}
	for i := 1; i <= nodes; i++ {
		l.nodes = append(l.nodes, &Node{lab: l, name: "n" + string(rune('0'+i)), index: i, addr4: NodeAddr4(i), addr6: NodeAddr6(i)})
	}
	return l
}

func TestCorosyncConf(t *testing.T) {
	c := testLab(3).corosyncConf()
	for _, want := range []string{"cluster_name: unit", "token: 1000", "token_coefficient: 0", "crypto_cipher: none",
		"ring0_addr: 203.0.113.11", "name: n3", "nodeid: 3", "provider: corosync_votequorum", "to_syslog: no"} {
		if !strings.Contains(c, want) {
			t.Errorf("corosync.conf lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "two_node") {
		t.Error("two_node with 3 nodes")
	}
	if !strings.Contains(testLab(2).corosyncConf(), "two_node: 1") {
		t.Error("no two_node with 2 nodes")
	}
	// corosync wants every { at the end of its line.
	for _, line := range strings.Split(c, "\n") {
		if i := strings.Index(line, "{"); i >= 0 && strings.TrimSpace(line[i+1:]) != "" {
			t.Errorf("corosync.conf: %q", line)
		}
	}
}

func TestSeedCIB(t *testing.T) {
	l := testLab(3)
	cib := l.seedCIB()
	for _, want := range []string{`name="stonith-enabled" value="true"`, `name="dc-deadtime" value="2s"`,
		`<node id="2" uname="n2"/>`, `<primitive id="lab-fence" class="stonith" type="fence_storhaug_lab">`,
		`name="pcmk_host_list" value="n1 n2 n3"`, `name="socket" value="/var/tmp/storhaug-lab/unit/fence.sock"`} {
		if !strings.Contains(cib, want) {
			t.Errorf("seed CIB lacks %q:\n%s", want, cib)
		}
	}
	if strings.Contains(cib, "stonith-enabled\" value=\"false") || strings.Contains(cib, "pcmk_delay_max") {
		t.Error("seed CIB: fencing off, or a delay with 3 nodes")
	}
	if !strings.Contains(testLab(2).seedCIB(), `name="pcmk_delay_max"`) {
		t.Error("2-node seed CIB: no pcmk_delay_max (both halves of a split would shoot)")
	}
	if s, err := ParseCrmMon([]byte("<x/>")); err != nil || s.DC != "" {
		t.Errorf("empty crm_mon: %+v %v", s, err)
	}
}

func TestServiceConfs(t *testing.T) {
	l := testLab(3)
	if c := l.ctdbConf(); !strings.Contains(c, "cluster lock = /var/tmp/storhaug-lab/unit/shared/ctdb/reclock") {
		t.Errorf("ctdb.conf:\n%s", c)
	}
	if c := l.ctdbNodes(); c != "198.51.100.11\n198.51.100.12\n198.51.100.13\n" {
		t.Errorf("nodes: %q", c)
	}
	if c := l.smbConf(); !strings.Contains(c, "clustering = yes") || !strings.Contains(c, "path = /var/tmp/storhaug-lab/unit/shared/smb") {
		t.Errorf("smb.conf:\n%s", c)
	}
	c := l.ganeshaConf()
	for _, want := range []string{"RecoveryBackend = fs;", "Path = /var/tmp/storhaug-lab/unit/shared/export;", "Pseudo = /export;", "Name = VFS;"} {
		if !strings.Contains(c, want) {
			t.Errorf("ganesha.conf lacks %q", want)
		}
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Error("ganesha.conf: unbalanced braces")
	}
	if strings.Count(c, "Protocols = 4;") != 2 || !strings.Contains(c, "Enable_NLM = false;") {
		t.Errorf("ganesha.conf without NFSv3 serves more than v4:\n%s", c)
	}
	// what storhaug's ganesha agent checks: the cluster's scope (the
	// cluster is named after the prefix), early lift without NLM
	if h, err := checkGanesha(c, l.opts.Prefix); err != nil || !h.EarlyLift || len(h.Warnings) > 0 {
		t.Errorf("ganesha.conf fails the agent's check: %+v %v", h, err)
	}
	// NFSv3 (the kernel clients' lab): v3 in the core and the export, NLM
	// for its locks, the pseudo path mountable by v3 clients.
	l.opts.NFSv3 = true
	c = l.ganeshaConf()
	for _, want := range []string{"Enable_NLM = true;", "Mount_Path_Pseudo = true;"} {
		if !strings.Contains(c, want) {
			t.Errorf("NFSv3 ganesha.conf lacks %q", want)
		}
	}
	if h, err := checkGanesha(c, l.opts.Prefix); err != nil || h.EarlyLift || len(h.Warnings) > 0 {
		t.Errorf("NFSv3 ganesha.conf fails the agent's check: %+v %v", h, err)
	}
	if strings.Count(c, "Protocols = 3, 4;") != 2 {
		t.Errorf("NFSv3 ganesha.conf: want Protocols = 3, 4 in core and export:\n%s", c)
	}
}

func checkGanesha(text, scope string) (*ganesha.HA, error) {
	c, err := ganesha.ParseConfig(text, "/nonexistent")
	if err != nil {
		return nil, err
	}
	return c.CheckHA(scope)
}

// STORHAUG_LAB_GANESHA_DEBUG's LOG block: each component named at
// FULL_DEBUG; nothing without it.
func TestGaneshaLogConf(t *testing.T) {
	if c := ganeshaLogConf(" "); c != "" {
		t.Errorf("no components: %q", c)
	}
	c := ganeshaLogConf("CLIENTID, NFS4_LOCK")
	for _, want := range []string{"LOG {", "COMPONENTS {", "CLIENTID = FULL_DEBUG;", "NFS4_LOCK = FULL_DEBUG;"} {
		if !strings.Contains(c, want) {
			t.Errorf("LOG block lacks %q:\n%s", want, c)
		}
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Errorf("unbalanced braces:\n%s", c)
	}
}
