package command

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/agents"
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
	if _, err := os.Stat("/usr/sbin/cibadmin"); err != nil {
		t.Skip("Pacemaker not installed")
	}
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
	for _, want := range []string{`<primitive id="storhaug-vip-198.51.100.201" class="ocf" provider="storhaug" type="IPaddr3"`, "pcs -f storhaug.cib resource create storhaug-ctdb ocf:storhaug:CTDB", "promotable storhaug-ctdb-clone", "add primitive storhaug-vip-198.51.100.203"} {
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
