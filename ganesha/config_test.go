package ganesha

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConfigIncludesAndSyntax(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "ha.conf")
	if err := os.WriteFile(inc, []byte("nfsv4 { server_scope = \"lab-cluster\"; Grace_Period = 30 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "ganesha.conf")
	text := `# the admin's file
NFS_CORE_PARAM {
	Enable_NLM = false;   # v4 only
	Protocols = 4;
	Clustered = false;
}
EXPORT {
	Export_Id = 1;
	Path = "/srv/x;y"; # a ';' in a string
	FSAL { Name = VFS; }
	Protocols = 3, 4;
}
NFSv4 {
	Lease_Lifetime = 20;
	Grace_Period = 90;
}
%include "ha.conf"
`
	if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(main)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ block, key, want string }{
		{"NFSv4", "Server_Scope", "lab-cluster"},  // from the included file, other case
		{"NFSV4", "grace_period", "30"},           // the later value wins
		{"NFSv4", "Lease_Lifetime", "20"},         //
		{"NFS_CORE_PARAM", "Protocols", "4"},      // not the export's
		{"NFS_CORE_PARAM", "Enable_NLM", "false"}, //
		{"EXPORT", "Path", "/srv/x;y"},            //
	} {
		if v, ok := c.Value(tc.block, tc.key); !ok || v != tc.want {
			t.Errorf("%s.%s = %q %v, want %q", tc.block, tc.key, v, ok, tc.want)
		}
	}
	if _, ok := c.Value("EXPORT", "Name"); ok {
		t.Error("a nested block's parameter was taken as the top-level block's")
	}
	h, err := c.CheckHA("lab-cluster")
	if err != nil {
		t.Fatal(err)
	}
	if !h.EarlyLift || h.NLM || h.NFSv3 || h.Grace != 30 || h.Lease != 20 || len(h.Warnings) != 0 || h.ReaperDelay() != 10 {
		t.Errorf("CheckHA = %+v", h)
	}
}

func TestReadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"unclosed":  "NFSv4 { Grace_Period = 20;\n",
		"stray":     "}\n",
		"string":    "NFSv4 { Server_Scope = \"x; }\n",
		"include":   "%include \"missing.conf\"\n",
		"garbage":   "NFSv4 Grace_Period\n",
		"recursive": "%include \"recursive.conf\"\n",
	} {
		p := filepath.Join(dir, name+".conf")
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := ReadConfig(p); err == nil {
			t.Errorf("%s: no error for %q", name, text)
		}
	}
}

func TestCheckHA(t *testing.T) {
	const good = "NFSv4 { Server_Scope = c1; }\nNFS_CORE_PARAM { Clustered = false; }\n"
	for _, tc := range []struct {
		name, text, scope string
		key               string // the parameter the error names; "" for none
		early, nlm        bool
		warn              string
	}{
		{name: "defaults with scope", text: good, scope: "c1", nlm: true},
		{name: "no scope", text: "NFSv4 { Grace_Period = 90; }", scope: "c1", key: KeyScope},
		{name: "no scope, none asked", text: "NFS_CORE_PARAM { Clustered = false; }", nlm: true, warn: KeyScope},
		{name: "scope in the wrong block", text: "NFS_CORE_PARAM { Server_Scope = c1; }", scope: "c1", key: KeyScope},
		{name: "other scope", text: "NFSv4 { Server_Scope = c2; }", scope: "c1", key: KeyScope},
		{name: "any scope", text: "NFSv4 { Server_Scope = c2; } NFS_CORE_PARAM { Clustered = false; }", nlm: true},
		{name: "v4 only", text: good + "NFS_CORE_PARAM { Enable_NLM = false; Protocols = 4; }", scope: "c1", early: true},
		{name: "v4 only, NLM on", text: good + "NFS_CORE_PARAM { Protocols = 4; }", scope: "c1", nlm: true, warn: "Enable_NLM = false"},
		{name: "v3, NLM on", text: good + "NFS_CORE_PARAM { Protocols = 3, 4; }", scope: "c1", nlm: true},
		{name: "grace below lease", text: "NFSv4 { Server_Scope = c1; Lease_Lifetime = 30; Grace_Period = 20; }", scope: "c1", key: KeyGrace},
		{name: "grace below default lease", text: "NFSv4 { Server_Scope = c1; Grace_Period = 20; }", scope: "c1", key: KeyGrace},
		{name: "graceless", text: "NFSv4 { Server_Scope = c1; Graceless = true; }", scope: "c1", key: KeyGraceless},
		{name: "bad number", text: "NFSv4 { Server_Scope = c1; Grace_Period = soon; }", scope: "c1", key: KeyGrace},
		{name: "bad bool", text: good + "NFS_CORE_PARAM { Enable_NLM = perhaps; }", scope: "c1", key: KeyNLM},
		{name: "clustered by default", text: "NFSv4 { Server_Scope = c1; }", scope: "c1", key: KeyClustered},
		{name: "clustered", text: "NFSv4 { Server_Scope = c1; } NFS_CORE_PARAM { Clustered = true; }", scope: "c1", key: KeyClustered},
		{name: "clustered, another backend", text: "NFSv4 { Server_Scope = c1; RecoveryBackend = rados_cluster; }", scope: "c1", nlm: true},
	} {
		c, err := ParseConfig(tc.text, t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h, err := c.CheckHA(tc.scope)
		var ce *ConfigError
		switch {
		case tc.key != "":
			if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.key)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if h.EarlyLift != tc.early || h.NLM != tc.nlm {
			t.Errorf("%s: early lift %v NLM %v, want %v %v", tc.name, h.EarlyLift, h.NLM, tc.early, tc.nlm)
		}
		w := strings.Join(h.Warnings, "\n")
		if (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
			t.Errorf("%s: warnings %q, want one with %q", tc.name, w, tc.warn)
		}
	}
}
