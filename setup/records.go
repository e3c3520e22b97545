package setup

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/storhaug/storhaug/ganesha"
)

// OwnerRecordGlob matches the files in which ganesha_trigger records, on
// the shared NFS state, which node last started each trigger
// (storhaug-owner-<resource>, beside the nodes' directories
// <HA_NFS_MNT_DIR>/nfs-ganesha/<node>): state of storhaug's agents, like
// the storhaug-* node attributes teardown also removes.
const OwnerRecordGlob = "storhaug-owner-*"

// RemoveOwnerRecords removes the triggers' owner records from the shared
// NFS state of c, so that a cluster set up again does not take a node of
// the old one for an address's previous owner, and their takeover sets. It
// returns the files removed.
func RemoveOwnerRecords(c *Config) ([]string, error) {
	if !c.Has("nfs") || c.MntDir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(c.NFSStateDir(), "nfs-ganesha", OwnerRecordGlob))
	if err != nil {
		return nil, err
	}
	// ... and the takeover sets (links to client records) in the nodes'
	// recovery directories.
	sets, err := filepath.Glob(filepath.Join(c.NFSStateDir(), "nfs-ganesha", "*", "ganesha", ganesha.TakeoverSetGlob))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, f := range append(files, sets...) {
		if err := os.RemoveAll(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f)
	}
	return removed, errors.Join(errs...)
}
