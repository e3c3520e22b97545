package setup

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// Status from a simulated cluster: n3 down, a failed monitor on n2's VIP.
func TestParseStatus(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC // the golden's times
	cibXML, err := os.ReadFile("testdata/status/cib.xml")
	if err != nil {
		t.Fatal(err)
	}
	mon, err := os.ReadFile("testdata/status/crm_mon.xml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIB_file", "testdata/status/cib.xml")
	st, err := ParseStatus(mustParse(t, string(cibXML)), mon, History{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	st.WriteText(&b)
	golden(t, "status/text.golden", b.Bytes())
	j, _ := json.MarshalIndent(st, "", "  ")
	golden(t, "status/json.golden", append(j, '\n'))

	if !st.SetUp || st.StonithEnabled {
		t.Errorf("set up %v, fencing %v", st.SetUp, st.StonithEnabled)
	}
	state := map[string]string{}
	for _, n := range st.Nodes {
		state[n.Name] = n.State
		if !n.Storage {
			t.Errorf("%s not shown as a storage node", n.Name)
		}
	}
	if state["n3"] != "OFFLINE" || state["n1"] != "online" {
		t.Errorf("node states %v", state)
	}
	on := map[string]string{}
	for _, v := range st.VIPs {
		on[v.Address] = v.Node
		if v.Home == "" {
			t.Errorf("VIP %s without home", v.Address)
		}
	}
	if on["198.51.100.203"] != "n1" || on["198.51.100.201"] != "n1" {
		t.Errorf("VIPs on %v: n3's VIP should be on n1, next in its rotation", on)
	}
	if len(st.Failures) != 1 || st.Failures[0].Node != "n2" || st.Failures[0].Resource != "storhaug-vip-198.51.100.202" || st.Failures[0].Result != "not running" {
		t.Errorf("failures %+v", st.Failures)
	}
	if !strings.Contains(b.String(), "WARNING: fencing is disabled") {
		t.Error("no fencing warning")
	}
}

func TestParseStatusNotSetUp(t *testing.T) {
	cib := mustParse(t, liveCIB)
	mon := []byte(`<pacemaker-result api-version="2.25" request="crm_mon"><summary><current_dc present="true" name="n1" with_quorum="true"/><cluster_options stonith-enabled="true"/></summary><nodes><node name="n1" id="1" online="true" is_dc="true"/></nodes><resources/></pacemaker-result>`)
	st, err := ParseStatus(cib, mon, History{})
	if err != nil {
		t.Fatal(err)
	}
	if st.SetUp || !st.StonithEnabled || st.Cluster != "storhaug" || st.DC != "n1" || !st.Quorum {
		t.Errorf("%+v", st)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "not set up") {
		t.Errorf("warnings %v", st.Warnings)
	}
	if _, err := ParseStatus(cib, []byte("<bad"), History{}); err == nil {
		t.Error("bad crm_mon output accepted")
	}
}
