package ctdb

import (
	"strings"
	"testing"
)

const adminSmb = `[global]
	workgroup = LAB
	clustering = no
	vfs objects = acl_xattr
	idmap backend = tdb

[share]
	path = /srv/share
	clustering = no
`

func TestSambaBlockApplyRemove(t *testing.T) {
	s := SambaSettings{Socket: "/run/ctdb/ctdbd.socket", PassdbBackend: "tdbsam", IdmapBackend: "tdb2", FileidAlgorithm: "fsid"}
	out := string(ApplySamba([]byte(adminSmb), s))
	for _, want := range []string{
		"[global]\n\t" + SambaBegin + "\n\tclustering = yes\n", "\tctdbd socket = /run/ctdb/ctdbd.socket\n",
		"\tpassdb backend = tdbsam\n", "\tidmap config * : backend = tdb2\n", "\tfileid:algorithm = fsid\n",
		"\tvfs objects = acl_xattr fileid\n", "\t" + SambaEnd + "\n", "\tworkgroup = LAB\n",
		sambaDisabled + "\tclustering = no\n", sambaDisabled + "\tidmap backend = tdb\n",
		"[share]\n\tpath = /srv/share\n\tclustering = no\n", // other sections untouched
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if again := string(ApplySamba([]byte(out), s)); again != out {
		t.Errorf("second apply differs:\n%s", again)
	}
	if !HasSamba([]byte(out)) {
		t.Error("HasSamba false after apply")
	}
	if back := string(RemoveSamba([]byte(out))); back != adminSmb {
		t.Errorf("remove gave\n%s\nwant\n%s", back, adminSmb)
	}
	// No [global]: one is added.
	out = string(ApplySamba([]byte("[share]\n\tpath = /x\n"), SambaSettings{PassdbBackend: "tdbsam"}))
	if !strings.HasPrefix(out, "[global]\n\t"+SambaBegin+"\n\tclustering = yes\n") {
		t.Errorf("no-global apply:\n%s", out)
	}
}
