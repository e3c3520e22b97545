package command

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/setup"
)

// The CIB model uses the storhaug agents' real parameter names, and every
// operation it configures is one the agent implements.
func TestModelMatchesAgents(t *testing.T) {
	for _, extra := range []string{"", "HA_CTDB_MODE=lock\n"} {
		dir := t.TempDir()
		f := filepath.Join(dir, "storhaug.conf")
		data, err := os.ReadFile("../examples/storhaug.conf")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(f, append(data, extra...), 0o644)
		cfg, err := setup.Load(f, "")
		if err != nil {
			t.Fatal(err)
		}
		m := setup.Build(cfg, setup.Options{})
		seen := map[string]bool{}
		for _, r := range m.Resources {
			r.Walk(func(p *setup.Element) bool {
				if p.Name != "primitive" || p.Get("provider") != "storhaug" {
					return true
				}
				a := agents.Lookup(p.Get("type"))
				if a == nil {
					t.Errorf("%s: no storhaug agent %s", p.Get("id"), p.Get("type"))
					return false
				}
				seen[a.Name] = true
				if ia := p.Child("instance_attributes"); ia != nil {
					for _, nv := range ia.Children {
						if a.Param(nv.Get("name")) == nil {
							t.Errorf("%s: agent %s has no parameter %s", p.Get("id"), a.Name, nv.Get("name"))
						}
					}
				}
				for _, par := range a.Params {
					if par.Required && !strings.Contains(string(p.Canonical()), `name="`+par.Name+`"`) {
						t.Errorf("%s: required parameter %s of %s not set", p.Get("id"), par.Name, a.Name)
					}
				}
				if ops := p.Child("operations"); ops != nil {
					for _, op := range ops.Children {
						found := false
						for _, act := range a.Actions {
							if act.Name == op.Get("name") {
								found = true
							}
						}
						if !found {
							t.Errorf("%s: agent %s has no action %s", p.Get("id"), a.Name, op.Get("name"))
						}
					}
				}
				return false
			})
		}
		for _, want := range []string{"IPaddr3", "CTDB", "ganesha", "ganesha_trigger"} {
			if !seen[want] {
				t.Errorf("the sample's model uses no %s", want)
			}
		}
	}
}

// storhaug setup --dry-run on a CIB file prints the XML and the pcs
// commands, and changes nothing.
func TestSetupDryRunCLI(t *testing.T) {
	need.Tool(t, "cibadmin", "pacemaker-cli-utils")
	dir := t.TempDir()
	cib := filepath.Join(dir, "cib.xml")
	os.WriteFile(cib, []byte(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>`), 0o600)
	t.Setenv("CIB_file", cib)
	var out, errb bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, &errb
	if err := app.Run([]string{"storhaug", "setup", "--dry-run", "--config", "../examples/storhaug.conf", "--config-dir", filepath.Join(dir, "none")}); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{`<primitive id="storhaug-vip-198.51.100.201" class="ocf" provider="storhaug" type="IPaddr3"`, "pcs -f storhaug.cib resource create --no-default-ops storhaug-ctdb ocf:storhaug:CTDB", "promotable storhaug-ctdb-clone", "add primitive storhaug-vip-198.51.100.203"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if b, _ := os.ReadFile(cib); strings.Contains(string(b), "storhaug-") {
		t.Error("dry-run wrote the CIB")
	}
	// A bad configuration names file, line and key; exit status 6.
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("HA_CLUSTER_NODES=n1,n2\nHA_VIPS=198.51.100.201\nHA_VIP_PARAMS=no_such_param=1\n"), 0o644)
	if code := Run([]string{"storhaug", "setup", "--config", bad}); code != 6 {
		t.Errorf("bad config: exit %d, want 6", code)
	}
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, &errb
	err := app.Run(append([]string{"storhaug"}, args...))
	return out.String() + errb.String(), err
}

// The whole command line on a CIB file: setup, setup again, status,
// remove, add, teardown.
func TestOfflineCLI(t *testing.T) {
	need.Tool(t, "cibadmin", "pacemaker-cli-utils")
	dir := t.TempDir()
	cib := filepath.Join(dir, "cib.xml")
	empty, err := exec.Command("cibadmin", "--empty").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cib, empty, 0o600)
	t.Setenv("CIB_file", cib)
	sample, _ := os.ReadFile("../examples/storhaug.conf")
	conf := filepath.Join(dir, "storhaug.conf")
	os.WriteFile(conf, sample, 0o644)
	os.Mkdir(filepath.Join(dir, "storhaug.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "storhaug.d", "10-site.conf"), []byte("HA_MNT_DIR=/srv/shared\nHA_STONITH_ENABLED=false\n"), 0o644)

	out, err := runCLI(t, "setup", "-c", conf)
	if err != nil || !strings.Contains(out, "set up cluster storhaug") || !strings.Contains(out, "warning: fencing is disabled (HA_STONITH_ENABLED=false)") {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(cib); !strings.Contains(string(b), `value="/srv/shared/state"`) {
		t.Error("the drop-in's HA_MNT_DIR is not in the CIB")
	}
	if out, err := runCLI(t, "setup", "-c", conf); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("second setup: %v\n%s", err, out)
	}
	out, err = runCLI(t, "remove", "-c", conf, "n3")
	if err != nil || !strings.Contains(out, "VIP 198.51.100.203/24 (home n3) goes with it") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cib)
	if strings.Contains(string(b), "198.51.100.203") || strings.Contains(string(b), "storhaug-node-n3") || !strings.Contains(string(b), `name="clone-max" value="2"`) {
		t.Errorf("after remove n3 the CIB still has n3's objects or clone-max is not 2")
	}
	if c, _ := os.ReadFile(conf); !strings.Contains(string(c), `HA_CLUSTER_NODES="n1,n2"`) || !strings.Contains(string(c), `HA_VIPS="198.51.100.201/24 198.51.100.202/24"`) || !strings.Contains(string(c), `HA_VIP_NODES="n1,n2"`) {
		t.Errorf("config after remove:\n%s", c)
	}
	if out, err := runCLI(t, "add", "-c", conf, "n3", "198.51.100.203/24"); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	c, _ := os.ReadFile(conf)
	if !strings.Contains(string(c), `HA_CLUSTER_NODES="n1,n2,n3"`) {
		t.Errorf("config after add:\n%s", c)
	}
	// Back to what the sample says: setup has nothing to do.
	os.WriteFile(filepath.Join(dir, "orig.conf"), sample, 0o644)
	if out, err := runCLI(t, "setup", "-c", filepath.Join(dir, "orig.conf"), "--config-dir", filepath.Join(dir, "storhaug.d")); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("setup after remove+add: %v\n%s", err, out)
	}
	out, err = runCLI(t, "status")
	if err != nil || !strings.Contains(out, "vip-198.51.100.203") || !strings.Contains(out, "fencing OFF") {
		t.Errorf("status: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "teardown", "-c", conf); err != nil || !strings.Contains(out, "removed from cluster storhaug") {
		t.Fatalf("teardown: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(cib)
	a, _ := setup.ParseXML(after)
	e, _ := setup.ParseXML(empty)
	if a.Child("configuration").Canonical() != e.Child("configuration").Canonical() {
		t.Errorf("teardown left\n%s", a.Child("configuration").XML())
	}
}
