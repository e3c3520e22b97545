package pacemaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrClusterDown is returned when the CIB cannot be reached.
var ErrClusterDown = errors.New("the cluster is not running on this node")

// ErrConflict: the CIB changed between reading and writing it.
var ErrConflict = errors.New("the CIB changed while storhaug was updating it")

// Offline reports whether the tools work on a CIB file (CIB_file) rather
// than a live cluster.
func Offline() bool { return os.Getenv("CIB_file") != "" }

// QueryCIB returns the whole CIB (cibadmin --query). A cluster that does
// not answer is ErrClusterDown, with what to do about it.
func QueryCIB(ctx context.Context, r Runner) ([]byte, error) {
	out, err := r.Run(ctx, nil, "cibadmin", "--query")
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && !Offline() {
			msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(ee.Stderr), "\n", "; ")), " ")
			return nil, fmt.Errorf("%w (cibadmin --query: %s): start corosync and pacemaker here, or set CIB_file=FILE to work on a CIB file", ErrClusterDown, msg)
		}
		return nil, err
	}
	return out, nil
}

// PatchCIB changes the CIB from cur to next (two CIB documents) as one
// patch: the difference computed by crm_diff, applied by cibadmin --patch,
// which Pacemaker applies only if the CIB is still at cur's version
// (ErrConflict otherwise).
func PatchCIB(ctx context.Context, r Runner, cur, next []byte) error {
	dir, err := os.MkdirTemp("", "storhaug-cib-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pa, pb := filepath.Join(dir, "current.xml"), filepath.Join(dir, "new.xml")
	if err := os.WriteFile(pa, cur, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pb, next, 0o600); err != nil {
		return err
	}
	diff, err := r.Run(ctx, nil, "crm_diff", "--original", pa, "--new", pb)
	var ee *ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Code == 1) { // 1: the files differ
		return err
	}
	if ee != nil {
		diff = ee.Stdout
	}
	if len(bytes.TrimSpace(diff)) == 0 {
		return fmt.Errorf("crm_diff produced no patch")
	}
	if _, err := r.Run(ctx, diff, "cibadmin", "--patch", "--xml-pipe"); err != nil {
		if errors.As(err, &ee) && (ee.Code == 103 || ee.Code == 104 || strings.Contains(ee.Stderr, "older")) {
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return err
	}
	return nil
}

// ReplaceSection replaces the CIB's section scope ("status") with xml.
func ReplaceSection(ctx context.Context, r Runner, scope string, xml []byte) error {
	_, err := r.Run(ctx, xml, "cibadmin", "--replace", "--scope", scope, "--xml-pipe")
	return err
}
