// Package install puts storhaug's agents where Pacemaker looks for them:
// one symlink per agent, OCF_ROOT/resource.d/storhaug/NAME, to the storhaug
// binary. It only ever creates and removes its own links.
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Provider is the OCF provider name the agents are installed under.
const Provider = "storhaug"

// DefaultOCFRoot is where Pacemaker looks for agents unless told otherwise.
const DefaultOCFRoot = "/usr/lib/ocf"

// Dir is the directory that holds the agents' links under ocfRoot.
func Dir(ocfRoot string) string { return filepath.Join(ocfRoot, "resource.d", Provider) }

// Link makes Dir(ocfRoot)/NAME a symlink to binary for every name, replacing
// a link of ours that points elsewhere. It refuses to replace anything that
// is not a symlink. It is idempotent and returns the links it changed.
func Link(ocfRoot, binary string, names []string) (changed []string, err error) {
	dir := Dir(ocfRoot)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return changed, err
		case st.Mode()&fs.ModeSymlink == 0:
			return changed, fmt.Errorf("%s exists and is not a symlink: not replacing it", p)
		default:
			if t, _ := os.Readlink(p); t == binary {
				continue
			}
		}
		tmp := p + ".storhaug-new"
		os.Remove(tmp)
		if err := os.Symlink(binary, tmp); err != nil {
			return changed, err
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return changed, err
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// Unlink removes Dir(ocfRoot)/NAME for every name where it is a symlink to
// binary, and the directory when that leaves it empty. Other files stay.
func Unlink(ocfRoot, binary string, names []string) (removed []string, err error) {
	dir := Dir(ocfRoot)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if t, err := os.Readlink(p); err != nil || t != binary {
			continue
		}
		if err := os.Remove(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) == 0 {
		os.Remove(dir)
	}
	return removed, nil
}
