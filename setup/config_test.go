package setup

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./setup -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", p, got, want)
	}
}

// dump renders what a Config means, for golden files.
func dump(c *Config) []byte {
	type view struct {
		Name, MntDir, SMBMntDir, NFSMntDir, NFSType, NFSVol, NFSConf, NFSExpDir string
		ClusterNodes, StorageNodes, VIPNodes, Services, SMBServices, Homes      []string
		VIPs                                                                    []string
		DeterministicFailover, Tickle, StonithSet, Stonith                      bool
		VIPNic                                                                  string
		VIPCidr                                                                 int
		TickleDir, CTDBMode, CTDBLock, CTDBConfDir, SMBManager, NoQuorum        string
		OCFProvider                                                             string
		Warnings                                                                []string
		SetAt                                                                   map[string]string
	}
	v := view{Name: c.Name, MntDir: c.MntDir, SMBMntDir: c.SMBMntDir, NFSMntDir: c.NFSMntDir, NFSType: c.NFSType,
		NFSVol: c.NFSVol, NFSConf: c.NFSConf, NFSExpDir: c.NFSExpDir, ClusterNodes: c.ClusterNodes,
		StorageNodes: c.StorageNodes, VIPNodes: c.VIPNodes, Services: c.Services, SMBServices: c.SMBServices,
		Homes: c.Homes(), DeterministicFailover: c.DeterministicFailover, Tickle: c.Tickle, StonithSet: c.StonithSet,
		Stonith: c.Stonith, VIPNic: c.VIPNic, VIPCidr: c.VIPCidr, TickleDir: c.TickleDir, CTDBMode: c.CTDBMode,
		CTDBLock: c.CTDBLock, CTDBConfDir: c.CTDBConfDir, SMBManager: c.SMBManager, NoQuorum: c.NoQuorum,
		OCFProvider: c.OCFProvider, Warnings: c.Warnings, SetAt: map[string]string{}}
	for _, x := range c.VIPs {
		v.VIPs = append(v.VIPs, x.String())
	}
	for k, s := range c.Settings {
		v.SetAt[k] = filepath.ToSlash(s.File) + ":" + itoa(s.Line)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestLoadGolden(t *testing.T) {
	for _, tc := range []struct{ name, file, dir string }{
		{"sample", "../examples/storhaug.conf", "testdata/config/none.d"},
		{"original", "testdata/config/original.conf", ""},
		{"quoting", "testdata/config/quoting.conf", ""},
		{"dropin", "testdata/config/dropin.conf", "testdata/config/dropin.d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.file, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "config/"+tc.name+".golden", dump(c))
		})
	}
}

// The shipped sample describes the demo: SMB via CTDB, NFS via Ganesha, one
// VIP per node of three.
func TestSampleConfig(t *testing.T) {
	c, err := Load("../examples/storhaug.conf", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ClusterNodes) != 3 || len(c.VIPs) != 3 || !c.Has("nfs") || !c.Has("smb") || c.SMBManager != SMBByCTDB {
		t.Errorf("sample: nodes %v, VIPs %v, services %v, smb by %s", c.ClusterNodes, c.VIPs, c.Services, c.SMBManager)
	}
	homes := map[string]bool{}
	for _, h := range c.Homes() {
		homes[h] = true
	}
	if len(homes) != 3 {
		t.Errorf("sample: homes %v are not one per node", c.Homes())
	}
}

func TestDropInsOverrideInOrder(t *testing.T) {
	c, err := Load("testdata/config/dropin.conf", "testdata/config/dropin.d")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.VIPs) != 3 {
		t.Errorf("VIPs = %v, want the 3 of 10-vips.conf", c.VIPs)
	}
	if s := c.Settings["HA_VIPS"]; !strings.HasSuffix(s.File, "10-vips.conf") || s.Line != 2 {
		t.Errorf("HA_VIPS set at %s:%d, want 10-vips.conf:2", s.File, s.Line)
	}
	if !c.DeterministicFailover {
		t.Error("20-more.conf's DETERMINISTIC_FAILOVER=yes not applied")
	}
}

func TestDefaultConfigDir(t *testing.T) {
	if got := DefaultConfigDir("/etc/sysconfig/storhaug.conf"); got != "/etc/sysconfig/storhaug.d" {
		t.Errorf("DefaultConfigDir = %s", got)
	}
}

const base = `HA_CLUSTER_NODES="n1,n2,n3"
HA_VIPS="198.51.100.1 198.51.100.2 198.51.100.3"
`

// Every error names the file, the line and the key.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string // each must appear in the error
	}{
		{"unknown key", base + "HA_VIPZ=1\n", []string{"f.conf:3: HA_VIPZ: unknown key (did you mean HA_VIPS?)"}},
		{"not an assignment", base + "echo hi\n", []string{`f.conf:3: expected KEY=value, found "echo hi"`}},
		{"spaces around =", base + "HA_NAME = x\n", []string{"f.conf:3: HA_NAME: no spaces allowed around '='"}},
		{"command substitution", base + "HA_NAME=$(hostname)\n", []string{`f.conf:3: HA_NAME: "$" is shell syntax`}},
		{"backquotes", base + "HA_NAME=\"`id`\"\n", []string{"f.conf:3: HA_NAME: \"`\" would be expanded by a shell"}},
		{"variable", base + "HA_MNT_DIR=\"$HOME\"\n", []string{`f.conf:3: HA_MNT_DIR: "$" would be expanded`}},
		{"command after", base + "HA_NAME=x; rm -rf /\n", []string{`f.conf:3: HA_NAME: ";" is shell syntax`}},
		{"two words", base + "HA_NAME=a b\n", []string{`f.conf:3: HA_NAME: unexpected "b" after the value`}},
		{"unterminated double", base + "HA_NAME=\"abc\n", []string{`f.conf:3: HA_NAME: unterminated " quote`}},
		{"unterminated single", base + "HA_NAME='abc\n", []string{`f.conf:3: HA_NAME: unterminated ' quote`}},
		{"continuation", base + "HA_NAME=abc\\\n", []string{`f.conf:3: HA_NAME: line continuation`}},
		{"bad utf8", base + "HA_NAME=\xff\n", []string{"f.conf:3: not valid UTF-8"}},
		{"missing nodes", `HA_VIPS="198.51.100.1"` + "\n", []string{"f.conf: HA_CLUSTER_NODES: required"}},
		{"missing vips", `HA_CLUSTER_NODES="n1,n2"` + "\n", []string{"f.conf: HA_VIPS: required"}},
		{"one node", "HA_CLUSTER_NODES=n1\nHA_VIPS=198.51.100.1\n", []string{"f.conf:1: HA_CLUSTER_NODES: high availability needs at least 2 nodes, found 1"}},
		{"bad node name", "HA_CLUSTER_NODES='n1,n/2'\nHA_VIPS=198.51.100.1\n", []string{`f.conf:1: HA_CLUSTER_NODES: "n/2" is not a valid node name`}},
		{"node twice", "HA_CLUSTER_NODES=n1,n2,n1\nHA_VIPS=198.51.100.1\n", []string{"f.conf:1: HA_CLUSTER_NODES: node n1 is listed twice"}},
		{"storage not member", base + "STORAGE_NODES=n1,n4\n", []string{"f.conf:3: STORAGE_NODES: node n4 is not in HA_CLUSTER_NODES"}},
		{"storage empty", base + "STORAGE_NODES=\n", []string{"f.conf:3: STORAGE_NODES: empty"}},
		{"bad address", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS='198.51.100.1 10.0.0.300'\n", []string{`f.conf:2: HA_VIPS: "10.0.0.300" is not an IP address`}},
		{"hostname as vip", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=server1\n", []string{`f.conf:2: HA_VIPS: "server1" is not an IP address`}},
		{"loopback vip", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=127.0.0.2\n", []string{"f.conf:2: HA_VIPS: 127.0.0.2 cannot be a virtual address"}},
		{"link-local without nic", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=fe80::5\n", []string{"f.conf:2: HA_VIPS: fe80::5 is link-local: set HA_VIP_NIC too"}},
		{"bad prefix", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=198.51.100.1/33\n", []string{`f.conf:2: HA_VIPS: "198.51.100.1/33": prefix length must be 1-32`}},
		{"network address", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=198.51.100.0/24\n", []string{"f.conf:2: HA_VIPS: 198.51.100.0 is the network address of 198.51.100.0/24"}},
		{"broadcast address", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=198.51.100.255/24\n", []string{"f.conf:2: HA_VIPS: 198.51.100.255 is the broadcast address of 198.51.100.0/24"}},
		{"vip twice", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS='198.51.100.1 198.51.100.1/24'\n", []string{"f.conf:2: HA_VIPS: 198.51.100.1 is listed twice"}},
		{"empty vips", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=\n", []string{"f.conf:2: HA_VIPS: empty"}},
		{"cidr too long for v4", "HA_CLUSTER_NODES=n1,n2\nHA_VIPS=198.51.100.1\nHA_VIP_CIDR_NETMASK=64\n", []string{`f.conf:3: HA_VIP_CIDR_NETMASK: "64" is not an IPv4 prefix length`}},
		{"cidr bad", base + "HA_VIP_CIDR_NETMASK=255.255.255.0\n", []string{`f.conf:3: HA_VIP_CIDR_NETMASK: "255.255.255.0" is not an IPv4 prefix length`}},
		{"vip count does not fit", base + "HA_VIP_NODES=n1,n2\n", []string{"f.conf:3: HA_VIP_NODES: 2 home nodes for 3 VIPs"}},
		{"vip node not in cluster", base + "HA_VIP_NODES=n1,n2,n9\n", []string{"f.conf:3: HA_VIP_NODES: node n9 is not in HA_CLUSTER_NODES"}},
		{"vip node not storage", base + "STORAGE_NODES=n1,n2\nHA_VIP_NODES=n1,n2,n3\n", []string{"f.conf:4: HA_VIP_NODES: node n3 is not a storage node"}},
		{"bad bool", base + "DETERMINISTIC_FAILOVER=maybe\n", []string{`f.conf:3: DETERMINISTIC_FAILOVER: "maybe" is not a boolean`}},
		{"bad service", base + "HA_SERVICES='nfs iscsi'\n", []string{`f.conf:3: HA_SERVICES: unknown service "iscsi"`}},
		{"no service", base + "HA_SERVICES=''\n", []string{"f.conf:3: HA_SERVICES: empty"}},
		{"relative mnt", base + "HA_MNT_DIR=run/storhaug\n", []string{`f.conf:3: HA_MNT_DIR: "run/storhaug" is not an absolute path`}},
		{"escaping state dir", base + "HA_NFS_MNT_DIR=../etc\n", []string{`f.conf:3: HA_NFS_MNT_DIR: "../etc" must be a directory name below HA_MNT_DIR`}},
		{"nfs type without vol", base + "HA_NFS_TYPE=glusterfs\n", []string{"f.conf: HA_NFS_VOL: required when HA_NFS_TYPE is set"}},
		{"ctdb mode", base + "HA_CTDB_MODE=master\n", []string{`f.conf:3: HA_CTDB_MODE: "master" is not one of leader, lock`}},
		{"smb manager", base + "HA_SMB_MANAGER=init\n", []string{`f.conf:3: HA_SMB_MANAGER: "init" is not one of ctdb, systemd, lsb, none`}},
		{"smb services empty", base + "HA_SMB_MANAGER=systemd\nHA_SMB_SERVICES=\n", []string{"f.conf:4: HA_SMB_SERVICES: empty"}},
		{"stonith", base + "HA_STONITH_ENABLED=off-ish\n", []string{`f.conf:3: HA_STONITH_ENABLED: "off-ish" is not a boolean`}},
		{"no quorum policy", base + "HA_NO_QUORUM_POLICY=panic\n", []string{`f.conf:3: HA_NO_QUORUM_POLICY: "panic" is not one of`}},
		{"bad nic", base + "HA_VIP_NIC='a/b'\n", []string{`f.conf:3: HA_VIP_NIC: "a/b" is not an interface name`}},
		{"bad name", base + "HA_NAME='my cluster'\n", []string{`f.conf:3: HA_NAME: "my cluster" is not a valid cluster name`}},
		{"tickle ports", base + "HA_VIP_TICKLE_PORTS=445,70000\n", []string{`f.conf:3: HA_VIP_TICKLE_PORTS: "70000" is not a port`}},
		{"tickle source", base + "HA_VIP_TICKLE_SOURCE=pcap\n", []string{`f.conf:3: HA_VIP_TICKLE_SOURCE: "pcap" is not one of auto, conntrack, sockdiag`}},
		{"extra params syntax", base + "HA_CTDB_PARAMS='ctdb_debuglevel=3 bogus'\n", []string{`f.conf:3: HA_CTDB_PARAMS: "bogus" is not name=value`}},
		{"extra param twice", base + "HA_VIP_PARAMS='arp_count=3 arp_count=4'\n", []string{"f.conf:3: HA_VIP_PARAMS: parameter arp_count is given twice"}},
		{"failure timeout", base + "HA_FAILURE_TIMEOUT=soon\n", []string{`f.conf:3: HA_FAILURE_TIMEOUT: "soon" is not a duration`}},
		{"several errors at once", base + "FOO=1\nBAR=2\n", []string{"f.conf:3: FOO: unknown key", "f.conf:4: BAR: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "f.conf")
			if err := os.WriteFile(f, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(f, filepath.Join(dir, "none.d"))
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
		})
	}
}

func TestConfigErrorInDropIn(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "storhaug.conf")
	os.WriteFile(f, []byte(base), 0o644)
	d := filepath.Join(dir, "storhaug.d")
	os.Mkdir(d, 0o755)
	os.WriteFile(filepath.Join(d, "50-x.conf"), []byte("\n\nHA_VIP_NODES=n1\n"), 0o644)
	_, err := Load(f, d)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(d, "50-x.conf")+":3: HA_VIP_NODES: 1 home nodes for 3 VIPs") {
		t.Errorf("error %v does not name the drop-in's line", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.conf"), d); err == nil || !strings.Contains(err.Error(), "missing.conf: no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckParams(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f.conf")
	os.WriteFile(f, []byte(base+"HA_GANESHA_PARAMS='logfile=/var/log/g.log'\nHA_VIP_PARAMS='arp_count=3 arp_cuont=2'\n"), 0o644)
	c, err := Load(f, "")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"IPaddr3/arp_count": true, "ganesha/logfile": true}
	err = c.CheckParams(func(a, p string) bool { return known[a+"/"+p] })
	if err == nil || !strings.Contains(err.Error(), f+":4: HA_VIP_PARAMS: the IPaddr3 agent has no parameter arp_cuont") || strings.Contains(err.Error(), "logfile") {
		t.Errorf("CheckParams: %v", err)
	}
	m := Build(c, Options{})
	if x := string(m.XML()); !strings.Contains(x, `name="logfile" value="/var/log/g.log"`) || !strings.Contains(x, `name="arp_count" value="3"`) {
		t.Error("extra parameters missing from the model")
	}
}

func TestIgnoredKeysWarn(t *testing.T) {
	c, err := Load("testdata/config/original.conf", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "original.conf:3: HA_PASSWORD: ignored") {
		t.Errorf("warnings = %q", c.Warnings)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "a b", `it's "quoted" $HOME`, "back\\slash", "`x`", "a,b c"} {
		s, err := Parse("x", []byte(Format("K", v)+"\n"))
		if err != nil || len(s) != 1 || s[0].Value != v {
			t.Errorf("Format(%q) = %s reads back as %+v, %v", v, Format("K", v), s, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("export A='x'\"y\"z # c\nB=\\$x\n"))
	f.Add([]byte("A=\"\\\"\\\\\\$\"\n#x\n\tB=1 \r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f", data)
		if err != nil {
			var es Errors
			if !errorsAs(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.File != "f" {
					t.Fatalf("error without a line: %v", e)
				}
			}
			return
		}
		// What was read writes back and reads again as the same.
		var b strings.Builder
		for _, x := range s {
			b.WriteString(Format(x.Key, x.Value) + "\n")
		}
		s2, err := Parse("f", []byte(b.String()))
		if err != nil {
			t.Fatalf("reparse of %q: %v", b.String(), err)
		}
		if len(s) != len(s2) {
			t.Fatalf("reparse: %d settings, want %d", len(s2), len(s))
		}
		for i := range s {
			if s[i].Key != s2[i].Key || s[i].Value != s2[i].Value {
				t.Fatalf("reparse: %q=%q, want %q=%q", s2[i].Key, s2[i].Value, s[i].Key, s[i].Value)
			}
		}
		// Validation never panics either.
		FromSettings("f", s)
	})
}

func errorsAs(err error, target *Errors) bool {
	es, ok := err.(Errors)
	if ok {
		*target = es
	}
	return ok
}
