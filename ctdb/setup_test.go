package ctdb

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSetupApplyRestore(t *testing.T) {
	dir := t.TempDir()
	etc, data := filepath.Join(dir, "etc"), filepath.Join(dir, "share")
	os.MkdirAll(filepath.Join(data, "events", "legacy"), 0o755)
	os.WriteFile(filepath.Join(data, "events", "legacy", "00.ctdb.script"), []byte("#!/bin/sh\n"), 0o755)
	os.MkdirAll(etc, 0o755)
	const admin = "[cluster]\n\tnode address = 198.51.100.11\n"
	os.WriteFile(filepath.Join(etc, "ctdb.conf"), []byte(admin), 0o640)
	smb := filepath.Join(dir, "smb.conf")
	os.WriteFile(smb, []byte("[global]\n"), 0o644)
	s := &Setup{Dir: etc, DataDir: data,
		Conf:    []Setting{{Section: "logging", Key: "location", Value: "syslog"}},
		Options: []Setting{{Key: "CTDB_SERVICE_SMB", Value: "smbd"}},
		Scripts: map[string]bool{"00.ctdb": true}, ManageSamba: true, SmbConf: smb}
	var u Undo
	if err := s.Apply(&u); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(etc, "ctdb.conf")); fi.Mode().Perm() != 0o640 {
		t.Errorf("ctdb.conf mode %v, want the admin's 0640", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(smb); !HasSamba(b) {
		t.Errorf("smb.conf without the clustering block:\n%s", b)
	}
	if err := s.Restore(&u); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "ctdb.conf")); string(b) != admin {
		t.Errorf("ctdb.conf after restore:\n%s", b)
	}
	if _, err := os.Lstat(filepath.Join(etc, "events", "legacy", "00.ctdb.script")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("00.ctdb still enabled: %v", err)
	}
	if b, _ := os.ReadFile(smb); string(b) != "[global]\n" {
		t.Errorf("smb.conf after restore:\n%s", b)
	}

	// An event script CTDB did not ship is a missing installation.
	s.Scripts = map[string]bool{"50.samba": true}
	var me *MissingError
	if err := s.Apply(&Undo{}); !errors.As(err, &me) {
		t.Errorf("enabling a script not shipped: %v, want a MissingError", err)
	}
}

func TestStateSaveLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "s.json")
	if s, ok := LoadState(p); ok || s.PNN != UnknownPNN {
		t.Errorf("no state: %+v %v", s, ok)
	}
	want := &State{Undo: Undo{Samba: true}, PID: 7, PNN: 1, Naming: "leader"}
	if err := want.Save(p); err != nil {
		t.Fatal(err)
	}
	if got, ok := LoadState(p); !ok || got.PID != 7 || got.PNN != 1 || !got.Samba || got.Naming != "leader" {
		t.Errorf("loaded %+v %v", got, ok)
	}
	// A state that cannot be written is an error, not a silence.
	if err := want.Save(filepath.Join(p, "below-a-file")); err == nil {
		t.Error("saving below a file succeeded")
	}
}
