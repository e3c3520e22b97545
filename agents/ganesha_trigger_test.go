package agents

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/nsm/nsmtest"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/pacemaker"
	"github.com/storhaug/storhaug/tickle"
)

// runAgent runs one action of a with env and returns the exit code and
// what it wrote to stderr.
func runAgent(t *testing.T, a *ocf.Agent, action string, env map[string]string) (ocf.Code, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := map[string]string{"HA_LOGFACILITY": "none"}
	for k, v := range env {
		e[k] = v
	}
	code := a.Run(context.Background(), []string{action}, ocf.MapEnv(e), &out, &errb)
	return code, errb.String()
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func triggerEnv(t *testing.T, bus string) map[string]string {
	return map[string]string{
		"HA_RSCTMP":                   t.TempDir(),
		"OCF_RESOURCE_INSTANCE":       "vip1_trigger:0",
		"OCF_RESKEY_dbus_address":     bus,
		"OCF_RESKEY_CRM_meta_timeout": "5000",
	}
}

func notifyEnv(base map[string]string, node, typ, op, start, stop string) map[string]string {
	return with(base,
		"OCF_RESKEY_CRM_meta_on_node", node,
		"OCF_RESKEY_CRM_meta_notify_type", typ,
		"OCF_RESKEY_CRM_meta_notify_operation", op,
		"OCF_RESKEY_CRM_meta_notify_start_uname", start,
		"OCF_RESKEY_CRM_meta_notify_stop_uname", stop)
}

// start, stop and monitor keep real state (the original's monitor always
// said running, which fails ocf-tester).
func TestTriggerState(t *testing.T) {
	env := triggerEnv(t, "")
	steps := []struct {
		action string
		want   ocf.Code
	}{
		{"monitor", ocf.NotRunning}, {"stop", ocf.Success}, {"start", ocf.Success}, {"monitor", ocf.Success},
		{"start", ocf.Success}, {"monitor", ocf.Success}, {"stop", ocf.Success}, {"monitor", ocf.NotRunning},
	}
	for i, s := range steps {
		if code, stderr := runAgent(t, ganeshaTriggerAgent(), s.action, env); code != s.want {
			t.Fatalf("step %d: %s = %v, want %v (%s)", i, s.action, code, s.want, stderr)
		}
	}
	// instances do not share state
	other := with(env, "OCF_RESOURCE_INSTANCE", "vip2_trigger:0")
	runAgent(t, ganeshaTriggerAgent(), "start", env)
	if code, _ := runAgent(t, ganeshaTriggerAgent(), "monitor", other); code != ocf.NotRunning {
		t.Fatalf("monitor of another instance = %v, want 7", code)
	}
}

func TestTriggerNotifyNodeForm(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "198.51.100.10", "OCF_RESKEY_recovery_root", t.TempDir())
	// VIP moves n1 -> n2: n1's instance gets pre-stop and stops, n2's
	// starts and gets post-start. The release, at the stop (a pre-stop may
	// be followed by no stop: TestTriggerPreStopReleasesNothing), names the address (ganesha matches clients by the server
	// address in their owner string; "2:n1" released nothing), the
	// takeover the node (its records are <recovery_root>/n1/v4recov).
	startedOn(t, env)
	for _, s := range []struct {
		env  map[string]string
		want string // grace arguments received so far
	}{
		{notifyEnv(env, "n2", "pre", "start", "n2", "n1"), ""},                      // not ours to act on
		{notifyEnv(env, "n1", "pre", "stop", "n2", "n1"), ""},                       // the stop releases, if it comes
		{notifyEnv(env, "n3", "pre", "stop", "n2", "n1"), ""},                       // another node stops: not us
		{with(env, "OCF_RESKEY_CRM_meta_on_node", "n1"), "2:198.51.100.10"},         // the stop: release
		{notifyEnv(env, "n2", "post", "start", "n2", "n1"), "2:198.51.100.10 5:n1"}, // take over n1's clients
		{notifyEnv(env, "n3", "post", "start", "n2", "n1"), "2:198.51.100.10 5:n1"}, // started elsewhere
		{notifyEnv(env, "n2", "post", "stop", "n2", "n1"), "2:198.51.100.10 5:n1"},
		// first start anywhere: no stopped node, nothing sent (the original sent "5:")
		{notifyEnv(env, "n1", "post", "start", "n1", ""), "2:198.51.100.10 5:n1"},
		// restart in place: its stop released the clients, take them back
		{notifyEnv(env, "n1", "post", "start", "n1", "n1"), "2:198.51.100.10 5:n1 5:n1"},
		// two nodes lost at once
		{notifyEnv(env, "n3", "post", "start", "n3", "n1 n2"), "2:198.51.100.10 5:n1 5:n1 5:n1 5:n2"},
	} {
		action := "notify"
		if s.env["OCF_RESKEY_CRM_meta_notify_type"] == "" {
			action = "stop"
		}
		code, stderr := runAgent(t, ganeshaTriggerAgent(), action, s.env)
		if code != ocf.Success {
			t.Fatalf("notify %s-%s on %s = %v: %s", s.env["OCF_RESKEY_CRM_meta_notify_type"], s.env["OCF_RESKEY_CRM_meta_notify_operation"],
				s.env["OCF_RESKEY_CRM_meta_on_node"], code, stderr)
		}
		if got := strings.Join(fake.Calls(), " "); got != s.want {
			t.Fatalf("after notify %s-%s on %s ganesha got %q, want %q", s.env["OCF_RESKEY_CRM_meta_notify_type"],
				s.env["OCF_RESKEY_CRM_meta_notify_operation"], s.env["OCF_RESKEY_CRM_meta_on_node"], got, s.want)
		}
	}
}

// ganesha expires one client per release request: the trigger sends one
// per record of this node's clients that names the address; without the
// ip parameter it cannot name them and says so.
func TestTriggerReleaseEveryClient(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	root := t.TempDir()
	hexOwner := func(s string) string { return fmt.Sprintf("%d:0x%x", 2+2*len(s), s) }
	for _, rec := range []string{
		// as a clustered ganesha 4.3 writes them: under node<id>, an
		// owner that cannot be a file name ("/") in hex
		"node0/::ffff:198.51.100.101-(" + hexOwner("Linux NFSv4.0 198.51.100.101/198.51.100.10 tcp") + ")",
		"node0/::ffff:198.51.100.150-(" + hexOwner("Linux NFSv4.0 198.51.100.150/198.51.100.20 tcp") + ")", // another address's client
		"198.51.100.102-(43:Linux NFSv4.0 198.51.100.102 198.51.100.10 tcp)",
		"198.51.100.104-(16:Linux NFSv4.1 c4)", // its owner names no address
	} {
		if err := os.MkdirAll(filepath.Join(root, "v4recov", rec), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "198.51.100.10", "OCF_RESKEY_recovery_root", root)
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	if got, want := strings.Join(fake.Calls(), " "), "2:198.51.100.10 2:198.51.100.10"; got != want {
		t.Fatalf("ganesha got %q, want %q", got, want)
	}
	noIP := with(triggerEnv(t, bus), "OCF_RESKEY_recovery_root", root)
	startedOn(t, noIP)
	code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", noIP)
	if code != ocf.Success || !strings.Contains(stderr, "parameter ip is not set") {
		t.Fatalf("stop without ip = %v: %s", code, stderr)
	}
	if got := len(fake.Calls()); got != 2 {
		t.Fatalf("stop without ip sent %v", fake.Calls()[2:])
	}
}

func TestTriggerNotifyIPForm(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "n1", "v4recov"), 0o755)
	env := with(triggerEnv(t, bus), "OCF_RESKEY_name_form", "ip", "OCF_RESKEY_ip", "2001:DB8::10", "OCF_RESKEY_recovery_root", root)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n2", "post", "start", "n2", "n1")); code != 0 {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != 0 {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	// ganesha splits at the first colon: "5:2001:db8::10" is event 5 for the address
	if got, want := strings.Join(fake.Calls(), " "), "5:2001:db8::10 2:2001:db8::10"; got != want {
		t.Fatalf("ganesha got %q, want %q", got, want)
	}
	// the address's recovery directory is n1's
	if tgt, err := os.Readlink(filepath.Join(root, "2001:db8::10")); err != nil || tgt != "n1" {
		t.Fatalf("recovery link = %q, %v; want n1", tgt, err)
	}
	// first start: nothing
	if code, _ := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "post", "start", "n1", "")); code != 0 || len(fake.Calls()) != 2 {
		t.Fatalf("first start = %v, calls %q", code, fake.Calls())
	}
}

func TestTriggerBadInput(t *testing.T) {
	bus := ganeshatest.Bus(t)
	env := triggerEnv(t, bus)
	// ip form without or with a bad address: configuration error
	for _, e := range []map[string]string{
		with(env, "OCF_RESKEY_name_form", "ip"),
		with(env, "OCF_RESKEY_name_form", "ip", "OCF_RESKEY_ip", "198.51.100.300"),
		with(env, "OCF_RESKEY_name_form", "ip", "OCF_RESKEY_ip", "fe80::1%eth0"),
		with(env, "OCF_RESKEY_name_form", "hostname"),
	} {
		for _, action := range []string{"validate-all", "start"} {
			if code, stderr := runAgent(t, ganeshaTriggerAgent(), action, e); code != ocf.ErrConfigured || !strings.Contains(stderr, "ocf-exit-reason:parameter") {
				t.Errorf("%s with name_form=%q ip=%q = %v (%s), want 6 naming the parameter", action,
					e["OCF_RESKEY_name_form"], e["OCF_RESKEY_ip"], code, stderr)
			}
		}
	}

	// ganesha not running: a takeover fails with a clear reason; a release has nothing to do
	start := time.Now()
	code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(with(env, "OCF_RESKEY_CRM_meta_timeout", "2000"), "n2", "post", "start", "n2", "n1"))
	if code != ocf.ErrGeneric || !strings.Contains(stderr, "ocf-exit-reason:cannot take over n1's clients: ganesha is not running") {
		t.Errorf("post-start without ganesha = %v: %s", code, stderr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("post-start without ganesha took %v, its timeout was 2s", d)
	}
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != ocf.Success {
		t.Errorf("stop without ganesha = %v: %s", code, stderr)
	}

	// no D-Bus at all
	noBus := with(env, "OCF_RESKEY_dbus_address", "unix:path="+filepath.Join(t.TempDir(), "none"))
	code, stderr = runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(noBus, "n2", "post", "start", "n2", "n1"))
	if code != ocf.ErrGeneric || !strings.Contains(stderr, "D-Bus is not reachable") {
		t.Errorf("post-start without D-Bus = %v: %s", code, stderr)
	}

	// a grace request ganesha refuses: generic error with ganesha's reason
	fake := ganeshatest.Serve(t, bus)
	fake.SetRefuse("Unable to start grace")
	code, stderr = runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n2", "post", "start", "n2", "n1"))
	if code != ocf.ErrGeneric || !strings.Contains(stderr, `ocf-exit-reason:ganesha refused grace("5:n1"): Unable to start grace`) {
		t.Errorf("refused grace = %v: %s", code, stderr)
	}
}

// ocf-tester passes for ganesha_trigger (the original's always-0 monitor
// failed it).
func TestTriggerOCFTester(t *testing.T) {
	need.File(t, ocftest.OCFTesterPath, "resource-agents")
	bus := ganeshatest.Bus(t)
	ganeshatest.Serve(t, bus)
	root := ocftest.Install(t, ocftest.Binary(t))
	rsctmp := t.TempDir()
	ocftest.Tester{Params: map[string]string{"dbus_address": bus}, Env: []string{"HA_RSCTMP=" + rsctmp}}.
		Pass(t, ocftest.AgentPath(root, "ganesha_trigger"))
}

type fakeOwners struct {
	latest   map[string]string
	seq      int64
	recorded []string
}

func (f *fakeOwners) Latest(ctx context.Context, rsc string) (string, int64, error) {
	return f.latest[rsc], f.seq, nil
}
func (f *fakeOwners) Record(ctx context.Context, rsc, node string, seq int64) error {
	f.recorded = append(f.recorded, fmt.Sprintf("%s=%s@%d", rsc, node, seq))
	f.latest[rsc], f.seq = node, seq
	return nil
}

// A node lost without fencing: Pacemaker reports no stopped node in the
// post-start notification; the owner the start found in the CIB is taken
// over instead. A restart in place takes over nothing.
func TestTriggerTakeoverAfterUnfencedLoss(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	fo := &fakeOwners{latest: map[string]string{"vip1_trigger": "n2"}, seq: 4}
	agent := newGaneshaTriggerAgent(fo)

	env := with(triggerEnv(t, bus), "OCF_RESKEY_CRM_meta_on_node", "n3")
	if code, stderr := runAgent(t, agent, "start", env); code != 0 {
		t.Fatalf("start = %v: %s", code, stderr)
	}
	if got := strings.Join(fo.recorded, " "); got != "vip1_trigger=n3@5" {
		t.Fatalf("recorded %q, want vip1_trigger=n3@5", got)
	}
	if code, stderr := runAgent(t, agent, "notify", notifyEnv(env, "n3", "post", "start", "n3", "")); code != 0 {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n2" {
		t.Fatalf("ganesha got %q, want 5:n2", got)
	}
	// restart in place on n3: the previous owner is n3 itself
	runAgent(t, agent, "stop", env)
	runAgent(t, agent, "start", env)
	runAgent(t, agent, "notify", notifyEnv(env, "n3", "post", "start", "n3", ""))
	if got := strings.Join(fake.Calls(), " "); got != "5:n2" {
		t.Fatalf("after a restart in place ganesha got %q, want only the earlier 5:n2", got)
	}
}

func TestLatestOwner(t *testing.T) {
	x := `<nodes>
  <node id="1" uname="n1"><instance_attributes id="nodes-1">
    <nvpair id="a" name="storhaug-owner-vip1_trigger" value="100"/></instance_attributes></node>
  <node id="2" uname="n2"><instance_attributes id="nodes-2">
    <nvpair id="b" name="storhaug-owner-vip1_trigger" value="300"/>
    <nvpair id="c" name="storhaug-owner-vip2_trigger" value="900"/></instance_attributes></node>
  <node id="3" uname="n3"/>
</nodes>`
	nodes, err := pacemaker.ParseNodeAttrs([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	if got, seq := latestOwner(nodes, "storhaug-owner-vip1_trigger"); got != "n2" || seq != 300 {
		t.Fatalf("latestOwner = %q, %d; want n2, 300", got, seq)
	}
	if got, seq := latestOwner(nodes, "storhaug-owner-vip3_trigger"); got != "" || seq != 0 {
		t.Fatalf("latestOwner of an unknown resource = %q, %d", got, seq)
	}
}

// After grace, the NFSv3 clients in the stopped node's statd monitor list
// (on the shared state, through <recovery_root>/<node>: sm as Debian's
// statd keeps it, or statd/sm) are sent SM_NOTIFY from the VIP, naming the
// VIP, with a state number that grows per takeover; the clients of a node
// that did not stop are not.
func TestTriggerNotifiesNFSv3Clients(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	client := nsmtest.Start(t)
	nsmPortmapPort = client.PortmapPort()
	t.Cleanup(func() { nsmPortmapPort = 0 })
	nsmInProcess(t)
	shared, root := t.TempDir(), t.TempDir()
	// as rpc.statd writes a record: callback address, program, version,
	// procedure, cookie, mon_name (ganesha names clients by address), my_name
	rec := "0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff %s %s\n"
	for _, c := range []struct{ node, sm, client string }{{"n1", "sm", "127.0.0.1"}, {"n3", "statd/sm", "localhost"}} {
		if err := os.MkdirAll(filepath.Join(shared, c.node, "ganesha", "v4recov"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(shared, c.node, c.sm), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(shared, c.node, "ganesha"), filepath.Join(root, c.node)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shared, c.node, c.sm, c.client), []byte(fmt.Sprintf(rec, c.client, c.node)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5", "OCF_RESKEY_recovery_root", root)
	vip := netip.MustParseAddr("127.0.0.5") // any 127/8 address is local: it stands for the VIP
	for i, stopped := range []string{"n1", "n3"} {
		if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n2", "post", "start", "n2", stopped)); code != ocf.Success {
			t.Fatalf("post-start = %v: %s", code, stderr)
		}
		got := client.Notifications()
		if len(got) != i+1 {
			t.Fatalf("after the takeover of %s the client got %d notifications, want %d", stopped, len(got), i+1)
		}
		if want := (nsmtest.Notification{From: vip, MonName: "127.0.0.5", State: int32(2*i + 1)}); got[i] != want {
			t.Errorf("notification %d = %+v, want %+v", i+1, got[i], want)
		}
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n1 5:n3" {
		t.Errorf("ganesha got %q, want grace for n1 then n3", got)
	}
}

// ganesha releases by address only the NFSv4.0 clients (their owner string
// names the server address): an NFSv4.1+ client of the address kept its
// state and locks on the node that gave the address up, until its lease
// ran out there, and its reclaim on the node that took the address over
// was denied (seen in the lab at a failback: STATE_LOCK_CONFLICT, the lock
// reported lost). The stop also releases, by owner string, this node's
// clients that were connected to the address, as its IPaddr3 recorded them.
func TestTriggerReleasesNFSv41ClientsOfTheAddress(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	root, tickles := t.TempDir(), t.TempDir()
	owner := func(s string) string { return fmt.Sprintf("%d:0x%x", 2+2*len(s), s) }
	for _, rec := range []string{
		"::ffff:198.51.100.151-(" + owner("Linux NFSv4.1 lab-k1/k1") + ")",                 // connected to the address
		"::ffff:198.51.100.151-(" + owner("Linux NFSv4.2 lab-k1/k1") + ")",                 // the same client, NFSv4.2
		"198.51.100.152-(" + owner("Linux NFSv4.2 lab-k2/k2") + ")",                        // a client of another address
		"198.51.100.151-(" + owner("Linux NFSv4.0 198.51.100.151/198.51.100.10 tcp") + ")", // released by address
	} {
		if err := os.MkdirAll(filepath.Join(root, "v4recov", rec), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	vip := netip.MustParseAddr("198.51.100.10")
	conns := []tickle.Conn{
		tickle.NewConn(netip.MustParseAddrPort("198.51.100.10:2049"), netip.MustParseAddrPort("198.51.100.151:801")),
		tickle.NewConn(netip.MustParseAddrPort("198.51.100.10:445"), netip.MustParseAddrPort("198.51.100.153:50000")),
	}
	if err := tickle.WriteFile(tickles, vip, conns); err != nil {
		t.Fatal(err)
	}
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "198.51.100.10", "OCF_RESKEY_recovery_root", root, "OCF_RESKEY_tickle_dir", tickles)
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	want := "2:198.51.100.10 2:Linux NFSv4.1 lab-k1/k1 2:Linux NFSv4.2 lab-k1/k1"
	if got := strings.Join(fake.Calls(), " "); got != want {
		t.Fatalf("ganesha got %q at the stop, want %q", got, want)
	}
	// no recorded connections: the address's release alone, and a warning
	os.Remove(tickle.Path(tickles, vip))
	startedOn(t, env)
	code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env)
	if code != ocf.Success || !strings.Contains(stderr, "left to their lease") {
		t.Fatalf("stop without the address's connections = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls()[3:], " "); got != "2:198.51.100.10" {
		t.Fatalf("ganesha got %q at the stop without the address's connections, want 2:198.51.100.10", got)
	}
}

// A takeover loads the previous owner's records but those of the clients
// of its other addresses; those of the clients
// that came with the address are then removed from the previous owner's:
// they are the taker's now, and left there they would be loaded again at
// that node's restart (a failback) or takeover, and hold its grace without
// ever reclaiming (issue 13). A client also connected to another address
// keeps its records, as do the clients of other addresses.
func TestTriggerTakeoverForgetsMovedClients(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	root, tickles := t.TempDir(), t.TempDir()
	rec := func(addr, owner string) string {
		return filepath.Join(root, "n1", "v4recov", fmt.Sprintf("%s-(%d:%s)", addr, len(owner), owner))
	}
	moved := rec("::ffff:198.51.100.151", "Linux NFSv4.1 k1")
	other := rec("198.51.100.152", "Linux NFSv4.1 k2") // a client of another address
	both := rec("198.51.100.153", "Linux NFSv4.1 k3")  // connected to both addresses
	for _, d := range []string{moved, other, both, filepath.Join(root, "n2", "v4recov")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conn := func(l, r string) tickle.Conn {
		return tickle.NewConn(netip.MustParseAddrPort(l), netip.MustParseAddrPort(r))
	}
	if err := tickle.WriteFile(tickles, netip.MustParseAddr("198.51.100.10"), []tickle.Conn{
		conn("198.51.100.10:2049", "198.51.100.151:801"), conn("198.51.100.10:2049", "198.51.100.153:802"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := tickle.WriteFile(tickles, netip.MustParseAddr("198.51.100.20"), []tickle.Conn{
		conn("198.51.100.20:2049", "198.51.100.153:803"), conn("198.51.100.20:2049", "198.51.100.152:804"),
	}); err != nil {
		t.Fatal(err)
	}
	// What ganesha loads: n1's records but the one of the client of the
	// other address only (it reclaims where that address went, and loaded
	// here it would hold grace to its end).
	set := filepath.Join(root, "storhaug-take-198.51.100.10", "v4recov")
	checked := false
	fake.OnGrace(func(arg string) {
		if arg != "5:storhaug-take-198.51.100.10" || checked {
			return
		}
		checked = true
		var loaded []string
		es, err := os.ReadDir(set)
		if err != nil {
			t.Errorf("the takeover's records: %v", err)
		}
		for _, e := range es {
			if _, err := os.Stat(filepath.Join(set, e.Name())); err != nil {
				t.Errorf("%s leads nowhere when ganesha reads it: %v", e.Name(), err)
			}
			loaded = append(loaded, e.Name())
		}
		if want := []string{filepath.Base(both), filepath.Base(moved)}; !slices.Equal(loaded, want) {
			t.Errorf("ganesha reads %q, want %q", loaded, want)
		}
	})
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "198.51.100.10", "OCF_RESKEY_recovery_root", root, "OCF_RESKEY_tickle_dir", tickles)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n2", "post", "start", "n2", "n1")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:storhaug-take-198.51.100.10" {
		t.Fatalf("ganesha got %q, want 5:storhaug-take-198.51.100.10", got)
	}
	if _, err := os.Stat(moved); !os.IsNotExist(err) {
		t.Errorf("n1 still has the record of the client that moved with the address: %v", err)
	}
	for _, d := range []string{other, both} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v, want it kept", d, err)
		}
	}
	// restarted in place: this node's own records stay
	if err := os.MkdirAll(moved, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(with(env, "OCF_RESKEY_recovery_root", filepath.Join(root, "n1")), "n1", "post", "start", "n1", "n1")); code != ocf.Success {
		t.Fatalf("post-start in place = %v: %s", code, stderr)
	}
	if _, err := os.Stat(moved); err != nil {
		t.Errorf("a restart in place removed the node's own record: %v", err)
	}
}
