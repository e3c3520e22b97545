package ctdb

import (
	"strings"
	"testing"
)

const adminConf = `# See ctdb.conf(5) for documentation

[logging]
	# Enable logging to syslog
	location = syslog
	log level = NOTICE

[cluster]
	# cluster lock = !/bin/false CLUSTER LOCK NOT CONFIGURED
	node address = 198.51.100.11

[legacy]
	realtime scheduling = false
`

// The agent changes only the keys it owns: the admin's other keys,
// comments and layout survive, and restoring gives back the file byte for
// byte.
func TestConfApplyKeepsAdminAndRestores(t *testing.T) {
	c := ParseConf([]byte(adminConf))
	ch := c.Apply([]Setting{
		{Section: "logging", Key: "location", Value: "file:/var/log/ctdb/log.ctdb"},
		{Section: "logging", Key: "log level", Value: "NOTICE"}, // unchanged: not recorded
		{Section: "cluster", Key: "cluster lock", Value: "/shared/ctdb/reclock"},
		{Section: "cluster", Key: "leader capability", Value: "false"},
		{Section: "database", Key: "volatile database directory", Value: "/var/lib/ctdb/volatile"},
		{Section: "legacy", Key: "start as disabled", Value: "false"},
		{Section: "cluster", Key: "recovery lock", Remove: true}, // absent: nothing to do
	})
	out := string(c.Bytes())
	for _, want := range []string{
		"\tlocation = file:/var/log/ctdb/log.ctdb\n", "\tnode address = 198.51.100.11\n",
		"\tcluster lock = /shared/ctdb/reclock\n", "\trealtime scheduling = false\n",
		"[database]\n\tvolatile database directory = /var/lib/ctdb/volatile\n",
		"# Enable logging to syslog\n", "\tleader capability = false\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "location = syslog") {
		t.Errorf("old location kept:\n%s", out)
	}
	if len(ch) != 5 {
		t.Errorf("%d changes recorded, want 5: %+v", len(ch), ch)
	}
	// Keys go into their own section.
	if strings.Index(out, "cluster lock =") < strings.Index(out, "[cluster]") || strings.Index(out, "cluster lock =") > strings.Index(out, "[legacy]") {
		t.Errorf("cluster lock outside [cluster]:\n%s", out)
	}
	r := ParseConf(c.Bytes())
	r.Restore(ch)
	if got := string(r.Bytes()); got != adminConf {
		t.Errorf("restore gave\n%s\nwant\n%s", got, adminConf)
	}
}

// A key the admin changed while the agent ran is the admin's: restore
// leaves it.
func TestConfRestoreLeavesAdminEdits(t *testing.T) {
	c := ParseConf([]byte(adminConf))
	ch := c.Apply([]Setting{{Section: "logging", Key: "log level", Value: "DEBUG"}})
	c.Set("logging", "log level", "INFO") // the admin, later
	c.Restore(ch)
	if v, _ := c.Get("logging", "log level"); v != "INFO" {
		t.Errorf("log level %q, want the admin's INFO", v)
	}
}

// A key removed and restored goes back where it was, as it was written.
func TestConfRemoveRestoresInPlace(t *testing.T) {
	in := "[cluster]\n\t# On the shared storage\n\tcluster lock = /shared/reclock\n\t# trailing comment\n[legacy]\n\tx = 1\n"
	c := ParseConf([]byte(in))
	ch := c.Apply([]Setting{{Section: "cluster", Key: "cluster lock", Remove: true}, {Section: "cluster", Key: "leader capability", Value: "false"}})
	if _, ok := c.Get("cluster", "cluster lock"); ok {
		t.Fatal("not removed")
	}
	c.Restore(ch)
	if got := string(c.Bytes()); got != in {
		t.Errorf("restored\n%s\nwant\n%s", got, in)
	}
}

func TestConfRemoveAndCaseInsensitiveKeys(t *testing.T) {
	c := ParseConf([]byte("[Cluster]\n\tRecovery  Lock = /old/lock\n"))
	ch := c.Apply([]Setting{{Section: "cluster", Key: "recovery lock", Remove: true}})
	if _, ok := c.Get("cluster", "recovery lock"); ok || len(ch) != 1 || ch[0].Old != "/old/lock" {
		t.Fatalf("remove: %q %+v", c.Bytes(), ch)
	}
	c.Restore(ch)
	if v, ok := c.Get("CLUSTER", "recovery lock"); !ok || v != "/old/lock" {
		t.Errorf("restored %q %v", v, ok)
	}
}

// A start after a crash (no stop) must not forget the admin's original
// values: the earliest previous value wins.
func TestMergeChangesKeepsOriginal(t *testing.T) {
	first := []Change{{Section: "logging", Key: "location", Had: true, Old: "syslog", Wrote: true, New: "file:/a"}}
	second := []Change{
		{Section: "logging", Key: "location", Had: true, Old: "file:/a", Wrote: true, New: "file:/b"},
		{Section: "legacy", Key: "start as disabled", Wrote: true, New: "true"},
	}
	m := MergeChanges(first, second)
	if len(m) != 2 || m[0].Old != "syslog" || m[0].New != "file:/b" {
		t.Errorf("merged %+v", m)
	}
}

func TestShellVars(t *testing.T) {
	in := "# options\nCTDB_RPCINFO_LOCALHOST=\"127.0.0.1\"\nCTDB_SAMBA_SKIP_SHARE_CHECK=no\n"
	v := ParseShellVars([]byte(in))
	ch := v.Apply([]Setting{{Key: "CTDB_SAMBA_SKIP_SHARE_CHECK", Value: "yes"}, {Key: "CTDB_SERVICE_SMB", Value: "smb d"}})
	out := string(v.Bytes())
	if !strings.Contains(out, "CTDB_SAMBA_SKIP_SHARE_CHECK=yes\n") || !strings.Contains(out, `CTDB_SERVICE_SMB="smb d"`) || !strings.Contains(out, `CTDB_RPCINFO_LOCALHOST="127.0.0.1"`) {
		t.Errorf("applied:\n%s", out)
	}
	v.Restore(ch)
	if string(v.Bytes()) != in {
		t.Errorf("restored:\n%s", v.Bytes())
	}
}
