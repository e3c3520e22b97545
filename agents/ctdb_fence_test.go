package agents

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/ocf"
)

func fenceHistoryXML(target, action, status string, completed time.Time) string {
	return fmt.Sprintf(`<pacemaker-result api-version="2.25" request="stonith_admin --history %[1]s --verbose --output-as=xml">
  <list name="event history">
    <fence_event action="%[2]s" target="%[1]s" client="pacemaker-controld.1" origin="n1" status="%[3]s" delegate="n1" completed="%[4]s"/>
  </list>
  <status code="0" message="OK"/>
</pacemaker-result>`, target, action, status, completed.UTC().Format("2006-01-02 15:04:05Z"))
}

const ctdbNodeAttrsXML = `<nodes>
  <node id="1" uname="n1"><instance_attributes id="nodes-1"><nvpair id="nodes-1-p" name="storhaug-ctdb-pnn" value="0"/></instance_attributes></node>
  <node id="2" uname="n2"><instance_attributes id="nodes-2"><nvpair id="nodes-2-p" name="storhaug-ctdb-pnn" value="1"/></instance_attributes></node>
  <node id="3" uname="n3"><instance_attributes id="nodes-3"><nvpair id="nodes-3-p" name="storhaug-ctdb-pnn" value="2"/></instance_attributes></node>
</nodes>`

// The post-stop notification drops a stopped peer from the local ctdbd
// only when the fencer confirms it fenced since its CTDB last started;
// every other case leaves CTDB to its own keepalives.
func TestCTDBNotifyDropsFencedPeer(t *testing.T) {
	x := newCTDBFixture(t, true)
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|"
	if code, out := x.run("start"); code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	if !contains(x.f.crm, "--type nodes --name storhaug-ctdb-pnn --update 0 -N n1") {
		t.Errorf("start did not record the pnn: %v", x.f.crm)
	}
	x.f.nodeAttrs = ctdbNodeAttrsXML
	// This instance started an hour ago.
	sp := filepath.Join(x.dir, "state", "storhaug-CTDB-ctdb.json")
	st, ok := ctdb.LoadState(sp)
	if !ok || st.Started.IsZero() {
		t.Fatalf("start recorded no start time in %s", sp)
	}
	st.Started = time.Now().Add(-time.Hour)
	if err := st.Save(sp); err != nil {
		t.Fatal(err)
	}
	notify := func(op string, nodes string) {
		t.Helper()
		if code, out := x.run("notify", "OCF_RESKEY_CRM_meta_notify_type=post", "OCF_RESKEY_CRM_meta_notify_operation="+op,
			"OCF_RESKEY_CRM_meta_notify_"+op+"_uname="+nodes); code != ocf.Success {
			t.Fatalf("notify: %v %s", code, out)
		}
	}
	// Fencing off or never confirmed: nothing.
	x.f.fences = `<pacemaker-result api-version="2.25" request="stonith_admin"><list name="event history"/><status code="0" message="OK"/></pacemaker-result>`
	notify("stop", "n3")
	// A fencing that failed.
	x.f.fences = fenceHistoryXML("n3", "off", "failed", time.Now())
	notify("stop", "n3")
	// A fencing from before this instance started.
	x.f.fences = fenceHistoryXML("n3", "off", "success", time.Now().Add(-2*time.Hour))
	notify("stop", "n3")
	if len(x.f.dropped) != 0 {
		t.Fatalf("dropped %v without a confirmed fencing", x.f.dropped)
	}
	// Fenced now: n3 (pnn 2) is dropped; this node never is.
	x.f.fences = fenceHistoryXML("n3", "off", "success", time.Now().Add(-30*time.Minute))
	notify("stop", "n1 n3")
	if !slices.Equal(x.f.dropped, []int{2}) {
		t.Fatalf("dropped %v, want [2]", x.f.dropped)
	}
	// n3 came back (its instance started after that fencing) and stops
	// again without being fenced: the old fencing does not count.
	notify("start", "n3")
	x.f.dropped = nil
	notify("stop", "n3")
	if len(x.f.dropped) != 0 {
		t.Fatalf("dropped %v on a fencing older than the peer's start", x.f.dropped)
	}
	// Other notifications do nothing.
	x.f.fences = fenceHistoryXML("n3", "reboot", "success", time.Now().Add(2*time.Second))
	notify("promote", "n3")
	if code, _ := x.run("notify", "OCF_RESKEY_CRM_meta_notify_type=pre", "OCF_RESKEY_CRM_meta_notify_operation=stop",
		"OCF_RESKEY_CRM_meta_notify_stop_uname=n3"); code != ocf.Success || len(x.f.dropped) != 0 {
		t.Errorf("pre-stop: %v, dropped %v", code, x.f.dropped)
	}
	notify("stop", "n3")
	if !slices.Equal(x.f.dropped, []int{2}) {
		t.Errorf("a reboot since its start: dropped %v, want [2]", x.f.dropped)
	}
}

// The pre-stop notification (which runs while a lost node is being fenced)
// reads the stopping peers' pnns, so that the post-stop notification after
// the fencing drops the peer without reading the CIB; a pnn read long ago,
// or before the peer started again, is read again.
func TestCTDBPreStopReadsPNN(t *testing.T) {
	x := newCTDBFixture(t, true)
	x.f.nodeRow = "|0|198.51.100.11|0|0|0|0|0|0|0|0|Y|"
	if code, out := x.run("start"); code != ocf.Success {
		t.Fatalf("start: %v %s", code, out)
	}
	sp := filepath.Join(x.dir, "state", "storhaug-CTDB-ctdb.json")
	st, _ := ctdb.LoadState(sp)
	st.Started = time.Now().Add(-time.Hour)
	if err := st.Save(sp); err != nil {
		t.Fatal(err)
	}
	notify := func(typ, op, nodes string) {
		t.Helper()
		if code, out := x.run("notify", "OCF_RESKEY_CRM_meta_notify_type="+typ, "OCF_RESKEY_CRM_meta_notify_operation="+op,
			"OCF_RESKEY_CRM_meta_notify_"+op+"_uname="+nodes); code != ocf.Success {
			t.Fatalf("notify: %v %s", code, out)
		}
	}
	x.f.nodeAttrs = ctdbNodeAttrsXML
	notify("pre", "stop", "n3")
	// After the fencing the CIB is not read (here it cannot be).
	x.f.nodeAttrs = "not xml"
	x.f.fences = fenceHistoryXML("n3", "off", "success", time.Now())
	notify("post", "stop", "n3")
	if !slices.Equal(x.f.dropped, []int{2}) {
		t.Fatalf("dropped %v, want [2] (the pnn read before the stop)", x.f.dropped)
	}
	// n3 started again: what was read before its stop no longer counts.
	notify("post", "start", "n3")
	x.f.dropped = nil
	x.f.fences = fenceHistoryXML("n3", "off", "success", time.Now().Add(time.Second))
	notify("post", "stop", "n3")
	if len(x.f.dropped) != 0 {
		t.Fatalf("dropped %v with a pnn read before the peer's last start", x.f.dropped)
	}
	// A pnn read too long ago is read again.
	x.f.nodeAttrs = ctdbNodeAttrsXML
	notify("pre", "stop", "n3")
	st, _ = ctdb.LoadState(sp)
	p := st.StopPNNs["n3"]
	if p.PNN != 2 {
		t.Fatalf("pre-stop recorded %+v for n3, want pnn 2", st.StopPNNs)
	}
	p.PNN, p.At = 1, time.Now().Add(-time.Hour)
	st.StopPNNs["n3"] = p
	if err := st.Save(sp); err != nil {
		t.Fatal(err)
	}
	x.f.fences = fenceHistoryXML("n3", "off", "success", time.Now().Add(2*time.Second))
	notify("post", "stop", "n3")
	if !slices.Equal(x.f.dropped, []int{2}) {
		t.Fatalf("dropped %v, want [2] (read again: the recorded pnn is an hour old)", x.f.dropped)
	}
}
