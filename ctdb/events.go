package ctdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Script is the state of one legacy event script: enabled when
// <etcdir>/events/legacy/NAME.script links to (or is) the script.
type Script struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

// SetScript enables or disables the legacy event script name, as "ctdb
// event script enable|disable legacy NAME" does (a symlink in
// <etcdir>/events/legacy to <datadir>/events/legacy), without needing a
// running daemon. It returns the previous state; changed is false when the
// script already was in the wanted state. A script CTDB does not ship
// cannot be enabled.
func SetScript(etcdir, datadir, name string, enable bool) (was bool, changed bool, err error) {
	link := filepath.Join(etcdir, "events", "legacy", name+".script")
	target := filepath.Join(datadir, "events", "legacy", name+".script")
	fi, err := os.Lstat(link)
	if err != nil {
		fi = nil
	}
	switch {
	case err == nil:
		was = fi.Mode()&fs.ModeSymlink != 0 || fi.Mode()&0o100 != 0
	case errors.Is(err, fs.ErrNotExist):
		was = false
	default:
		return false, false, err
	}
	if was == enable {
		return was, false, nil
	}
	if enable {
		if fi != nil && fi.Mode().IsRegular() {
			// The admin's own copy of the script: make it executable.
			err = os.Chmod(link, fi.Mode().Perm()|0o100)
			return was, err == nil, err
		}
		if _, err := os.Stat(target); err != nil {
			return was, false, fmt.Errorf("event script %s: %w", name, err)
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return was, false, err
		}
		if err := os.Symlink(target, link); err != nil {
			return was, false, err
		}
		return was, true, nil
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		err = os.Remove(link)
	} else {
		err = os.Chmod(link, fi.Mode().Perm()&^0o111)
	}
	return was, err == nil, err
}
