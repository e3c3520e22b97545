package agents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/ocf"
)

// start and validate-all refuse a ganesha configuration that breaks
// failover, naming the parameter to change, before anything is started.
func TestGaneshaAgentChecksFailoverConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"OCF_RESOURCE_INSTANCE":   "nfs-ganesha:0",
		"OCF_RESKEY_pidfile":      filepath.Join(dir, "ganesha.pid"),
		"OCF_RESKEY_binary":       "/bin/true", // never started: the check comes first
		"OCF_RESKEY_dbus_address": "unix:path=" + filepath.Join(dir, "nobus"),
		"HA_RSCTMP":               filepath.Join(dir, "rsctmp"),
	}
	conf := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	core := "NFS_CORE_PARAM { Enable_NLM = false; Protocols = 4; Clustered = false; }\n"
	for _, tc := range []struct {
		name, text, scope string
		want              ocf.Code
		reason            string // in the exit reason
	}{
		{"no Server_Scope", core + "NFSv4 { Grace_Period = 90; }", "c1", ocf.ErrConfigured, "parameter server_scope (c1):"},
		{"another Server_Scope", core + "NFSv4 { Server_Scope = n1; }", "c1", ocf.ErrConfigured, `Server_Scope }: is "n1"`},
		{"Server_Scope in NFS_CORE_PARAM", "NFS_CORE_PARAM { Server_Scope = c1; }", "c1", ocf.ErrConfigured, "NFS_CORE_PARAM { Server_Scope }"},
		{"grace below lease", "NFSv4 { Server_Scope = c1; Grace_Period = 10; Lease_Lifetime = 20; }", "c1", ocf.ErrConfigured, "NFSv4 { Grace_Period }"},
		{"Clustered by default", "NFS_CORE_PARAM { Enable_NLM = false; }\nNFSv4 { Server_Scope = c1; }", "c1", ocf.ErrConfigured, "NFS_CORE_PARAM { Clustered }"},
		{"unreadable syntax", "NFSv4 { Server_Scope = c1;", "c1", ocf.ErrConfigured, "parameter config:"},
		// past the check, start fails on the missing bus
		{"same Server_Scope", core + "%include \"" + filepath.Join(dir, "scope.inc") + "\"\n", "c1", ocf.ErrGeneric, "D-Bus"},
		{"no scope asked", core, "", ocf.ErrGeneric, "D-Bus"},
	} {
		conf("scope.inc", "NFSv4 { Server_Scope = \"c1\"; }\n")
		e := with(env, "OCF_RESKEY_config", conf(strings.ReplaceAll(tc.name, " ", "-")+".conf", tc.text))
		e = with(e, "OCF_RESKEY_server_scope", tc.scope)
		for _, action := range []string{"validate-all", "start"} {
			want := tc.want
			if action == "validate-all" && want == ocf.ErrGeneric {
				want = ocf.Success
			}
			code, stderr := runAgent(t, ganeshaAgent(), action, e)
			if code != want || want != ocf.Success && !strings.Contains(stderr, tc.reason) {
				t.Errorf("%s: %s = %v, want %v with %q\n%s", tc.name, action, code, want, tc.reason, stderr)
			}
		}
	}
	// an unset scope with none asked is a warning at start
	_, stderr := runAgent(t, ganeshaAgent(), "start", with(with(env, "OCF_RESKEY_config", conf("w.conf", "NFS_CORE_PARAM { Clustered = false; }\nNFSv4 { Grace_Period = 90; }")), "OCF_RESKEY_server_scope", ""))
	if !strings.Contains(stderr, "Server_Scope }: is not set") {
		t.Errorf("start with no Server_Scope and none asked does not warn:\n%s", stderr)
	}
}

// With NLM on, another node's instance stopping puts this ganesha into
// grace ("0:"); with NFSv4 only, or when this node itself stops, or before
// the stop, nothing is sent.
func TestGaneshaNotifyGraceForLostNLMLocks(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	dir := t.TempDir()
	conf := func(nlm string) string {
		p := filepath.Join(dir, "nlm-"+nlm+".conf")
		os.WriteFile(p, []byte("NFS_CORE_PARAM { Enable_NLM = "+nlm+"; Clustered = false; }\nNFSv4 { Server_Scope = c1; }\n"), 0o644)
		return p
	}
	base := map[string]string{
		"OCF_RESOURCE_INSTANCE":   "nfs-ganesha:0",
		"OCF_RESKEY_pidfile":      filepath.Join(dir, "ganesha.pid"),
		"OCF_RESKEY_dbus_address": bus,
		"OCF_RESKEY_server_scope": "c1",
		"HA_RSCTMP":               filepath.Join(dir, "rsctmp"),
	}
	for _, tc := range []struct {
		name, nlm, node, typ, op, stop string
		want                           string
	}{
		{"v4 only, a peer lost", "false", "n1", "post", "stop", "n2", ""},
		{"NLM, before the stop", "true", "n1", "pre", "stop", "n2", ""},
		{"NLM, this node stops", "true", "n1", "post", "stop", "n1", ""},
		{"NLM, a start", "true", "n1", "post", "start", "", ""},
		{"NLM, a peer lost", "true", "n1", "post", "stop", "n2", "0:"},
		{"NLM, this node and a peer stop", "true", "n3", "post", "stop", "n3 n2", "0: 0:"},
	} {
		env := notifyEnv(with(base, "OCF_RESKEY_config", conf(tc.nlm)), tc.node, tc.typ, tc.op, "", tc.stop)
		if code, stderr := runAgent(t, ganeshaAgent(), "notify", env); code != ocf.Success {
			t.Fatalf("%s: notify = %v: %s", tc.name, code, stderr)
		}
		if got := strings.Join(fake.Calls(), " "); got != tc.want {
			t.Fatalf("%s: ganesha got %q, want %q", tc.name, got, tc.want)
		}
	}
	// ganesha not running: logged, the notification does not fail
	fake.Close()
	env := notifyEnv(with(base, "OCF_RESKEY_config", conf("true")), "n1", "post", "stop", "", "n2")
	if code, stderr := runAgent(t, ganeshaAgent(), "notify", env); code != ocf.Success {
		t.Errorf("notify with ganesha away = %v: %s", code, stderr)
	}
}
