package ctdb

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSetScript(t *testing.T) {
	etc, data := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(data, "events", "legacy"), 0o755)
	os.WriteFile(filepath.Join(data, "events", "legacy", "50.samba.script"), []byte("#!/bin/sh\n"), 0o755)
	link := filepath.Join(etc, "events", "legacy", "50.samba.script")
	was, changed, err := SetScript(etc, data, "50.samba", true)
	if err != nil || was || !changed {
		t.Fatalf("enable: %v %v %v", was, changed, err)
	}
	if dst, err := os.Readlink(link); err != nil || dst != filepath.Join(data, "events", "legacy", "50.samba.script") {
		t.Fatalf("link %q %v", dst, err)
	}
	if was, changed, _ := SetScript(etc, data, "50.samba", true); !was || changed {
		t.Error("second enable changed something")
	}
	if was, changed, err := SetScript(etc, data, "50.samba", false); !was || !changed || err != nil {
		t.Errorf("disable: %v %v %v", was, changed, err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Error("link left after disable")
	}
	// An admin's own copy (a regular file) is disabled and enabled by its
	// mode, never replaced.
	own := filepath.Join(etc, "events", "legacy", "49.winbind.script")
	os.WriteFile(own, []byte("#!/bin/sh\n# mine\n"), 0o755)
	if was, changed, err := SetScript(etc, data, "49.winbind", false); !was || !changed || err != nil {
		t.Errorf("disable own copy: %v %v %v", was, changed, err)
	}
	if was, changed, err := SetScript(etc, data, "49.winbind", true); was || !changed || err != nil {
		t.Errorf("enable own copy: %v %v %v", was, changed, err)
	}
	if b, _ := os.ReadFile(own); string(b) != "#!/bin/sh\n# mine\n" {
		t.Errorf("the admin's copy was replaced: %q", b)
	}
	if _, _, err := SetScript(etc, data, "99.nonesuch", true); err == nil {
		t.Error("enabled a script CTDB does not ship")
	}
	if _, changed, err := SetScript(etc, data, "99.nonesuch", false); err != nil || changed {
		t.Error("disabling an absent script")
	}
}
