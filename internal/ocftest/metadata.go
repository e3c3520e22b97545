package ocftest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Where resource-agents (4.12, Debian 12) installs the meta-data schemas.
const (
	ResourceAgentsDir = "/usr/share/resource-agents"
	DTDPath           = ResourceAgentsDir + "/ra-api-1.dtd"
	RNGPath           = ResourceAgentsDir + "/metadata.rng"
)

// The schemas pcs (0.11, Debian 12) validates an agent's meta-data against
// before it uses it, chosen by the meta-data's <version>. Pacemaker itself
// ships no schema for agent meta-data (crm_resource --show-metadata prints
// what the agent prints), so these are the ones its tools apply.
const (
	PCSRNG10Path = "/usr/share/pcs/data/ocf-1.0.rng"
	PCSRNG11Path = "/usr/share/pcs/data/ocf-1.1.rng"
)

// reloadable is the one thing OCF 1.1 meta-data may carry that
// resource-agents 4.12's metadata.rng does not know: the parameter attribute
// reloadable="0|1". OCF 1.1 defines it, and Pacemaker calls reload-agent
// when only reloadable parameters change.
const reloadable = `<optional><attribute name="reloadable"><ref name="boolean-values"/></attribute></optional>`

// ExtendedRNG returns the path of a copy of the installed metadata.rng
// that differs from it only by an optional reloadable attribute on
// parameters (see reloadable above). It is derived from the installed file
// each time rather than kept in the tree, so that the installed schema stays
// the reference for everything else.
func ExtendedRNG(t testing.TB) string {
	t.Helper()
	rng, err := os.ReadFile(RNGPath)
	if err != nil {
		t.Fatalf("ocftest: %v (install resource-agents: scripts/deps.sh)", err)
	}
	const anchor = `<element name="parameter">`
	if n := bytes.Count(rng, []byte(anchor)); n != 1 {
		t.Fatalf("ocftest: %s has %d %s elements, want 1: cannot add the reloadable attribute", RNGPath, n, anchor)
	}
	if bytes.Contains(rng, []byte(`"reloadable"`)) {
		t.Fatalf("ocftest: %s already knows reloadable: drop the extension", RNGPath)
	}
	ext := bytes.Replace(rng, []byte(anchor), []byte(anchor+"\n"+reloadable), 1)
	p := filepath.Join(t.TempDir(), "metadata-reloadable.rng")
	if err := os.WriteFile(p, ext, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// xmllint runs xmllint with args on the document and returns its output.
func xmllint(t testing.TB, dir string, doc []byte, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatalf("ocftest: xmllint is not installed (libxml2-utils; scripts/deps.sh)")
	}
	cmd := exec.Command("xmllint", append(append([]string{"--noout", "--nonet"}, args...), "-")...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(doc)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// CheckDTD validates OCF 1.0 meta-data as ocf-tester does: xmllint --valid
// in the directory that holds ra-api-1.dtd, which the DOCTYPE names.
func CheckDTD(t testing.TB, doc []byte) error {
	t.Helper()
	out, err := xmllint(t, ResourceAgentsDir, doc, "--valid")
	if err != nil || out != "" {
		return &ValidationError{Schema: DTDPath, Output: out, Doc: doc}
	}
	return nil
}

// CheckRNG validates OCF 1.1 meta-data against the schema at rng (such as
// ExtendedRNG's).
func CheckRNG(t testing.TB, rng string, doc []byte) error {
	t.Helper()
	out, err := xmllint(t, filepath.Dir(rng), doc, "--relaxng", rng)
	if err != nil || !strings.HasSuffix(out, "validates") {
		return &ValidationError{Schema: rng, Output: out, Doc: doc}
	}
	return nil
}

// ValidationError is meta-data a schema rejected.
type ValidationError struct {
	Schema string
	Output string // what xmllint said
	Doc    []byte
}

func (e *ValidationError) Error() string {
	return "meta-data is not valid against " + e.Schema + ":\n" + e.Output + "\n--- meta-data:\n" + string(e.Doc)
}
