package pacemaker

import (
	"os"
	"reflect"
	"testing"
)

// testdata/crm_mon.xml is real Pacemaker 2.1.5 output from the lab: a
// Dummy on n1, a promotable Stateful clone (promoted on n2), a group with
// an IPaddr2 that failed to start everywhere, a node attribute.
func TestParseCrmMon(t *testing.T) {
	b, err := os.ReadFile("testdata/crm_mon.xml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseCrmMon(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.DC != "n2" || !s.Quorum || s.StonithEnabled {
		t.Errorf("DC %q quorum %v stonith %v", s.DC, s.Quorum, s.StonithEnabled)
	}
	if !reflect.DeepEqual(s.Clones, []Clone{{ID: "st-clone", Promotable: true}}) {
		t.Errorf("clones %+v", s.Clones)
	}
	if got := s.Online(); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("online %v", got)
	}
	if len(s.Offline()) != 0 || !s.IsOnline("n3") || s.IsOnline("n9") {
		t.Errorf("offline %v", s.Offline())
	}
	if got := s.RunningOn("d1"); !reflect.DeepEqual(got, []string{"n1"}) {
		t.Errorf("d1 runs on %v", got)
	}
	if r, ok := s.Resource("d1"); !ok || r.Agent != "ocf:pacemaker:Dummy" || r.Role != "Started" || r.Parent != "" {
		t.Errorf("d1: %+v", r)
	}
	if got := s.RunningOn("st-clone"); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("st-clone runs on %v", got)
	}
	if got := s.WithRole("st", "Promoted"); !reflect.DeepEqual(got, []string{"n2"}) {
		t.Errorf("st promoted on %v", got)
	}
	if got := s.WithRole("st", "Slave"); !reflect.DeepEqual(got, []string{"n1", "n3"}) {
		t.Errorf("st unpromoted on %v", got)
	}
	if len(s.Instances("st")) != 3 || s.Instances("st")[0].Clone != "st-clone" {
		t.Errorf("st instances %+v", s.Instances("st"))
	}
	r, ok := s.Resource("bad_ip")
	if !ok || r.Active || r.Role != "Stopped" || r.Parent != "g1" || len(r.Nodes) != 0 {
		t.Errorf("bad_ip: %+v", r)
	}
	if got := s.RunningOn("g1"); len(got) != 0 {
		t.Errorf("g1 runs on %v", got)
	}
	f := s.FailuresOf("bad_ip")
	if len(f) != 3 {
		t.Fatalf("bad_ip failures: %+v", f)
	}
	if f[0].Node != "n2" || f[0].Task != "start" || f[0].ExitCode != 1 || f[0].ExitReason != "[findif] failed" || f[0].Call != 17 {
		t.Errorf("failure: %+v", f[0])
	}
	if c := s.FailCountOf("bad_ip", "n1"); c != 1000000 {
		t.Errorf("bad_ip fail count on n1: %d", c)
	}
	if c := s.FailCountOf("d1", "n1"); c != 0 {
		t.Errorf("d1 fail count: %d", c)
	}
	if v, ok := s.Attribute("n2", "role"); !ok || v != "storage" {
		t.Errorf("n2 role = %q, %v", v, ok)
	}
	if _, ok := s.Attribute("n1", "role"); ok {
		t.Error("n1 has a role")
	}
}

func TestParseCrmMonErrors(t *testing.T) {
	if _, err := ParseCrmMon([]byte("not xml")); err == nil {
		t.Error("no error for garbage")
	}
	_, err := ParseCrmMon([]byte(`<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>`))
	if err == nil {
		t.Error("no error for status 102")
	}
}

func TestOpKeyResource(t *testing.T) {
	for key, want := range map[string]string{
		"vip1_monitor_10000":       "vip1",
		"bad_ip_start_0":           "bad_ip",
		"my_vm_migrate_to_0":       "my_vm",
		"ctdb_promote_0":           "ctdb",
		"short":                    "short",
		"nfs_ganesha_notify_0":     "nfs_ganesha",
		"vip_trigger_monitor_5000": "vip_trigger",
	} {
		if got := opKeyResource(key); got != want {
			t.Errorf("opKeyResource(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestParseNodeAttrs(t *testing.T) {
	for _, doc := range []string{
		`<nodes><node id="1" uname="n1"><instance_attributes id="a"><nvpair id="a1" name="role" value="storage"/></instance_attributes></node><node id="2" uname="n2"/></nodes>`,
		`<cib><configuration><nodes><node id="1" uname="n1"><instance_attributes id="a"><nvpair id="a1" name="role" value="storage"/></instance_attributes></node><node id="2" uname="n2"/></nodes></configuration></cib>`,
	} {
		got, err := ParseNodeAttrs([]byte(doc))
		if err != nil || !reflect.DeepEqual(got, map[string]map[string]string{"n1": {"role": "storage"}, "n2": {}}) {
			t.Errorf("%s: %v %v", doc, got, err)
		}
	}
	if _, err := ParseNodeAttrs([]byte("<nodes")); err == nil {
		t.Error("no error for broken XML")
	}
}
