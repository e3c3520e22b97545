package agents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/nsm/nsmtest"
	"github.com/storhaug/storhaug/ocf"
)

// nfsLayout makes the shared NFS state as the ganesha agent lays it out:
// shared/<node>/{ganesha/v4recov,sm}, each node's recovery root being its
// own ganesha directory with links to the other nodes'. It returns each
// node's recovery root and the record file of a client (127.0.0.1) in
// holder's statd monitor list.
func nfsLayout(t *testing.T, holder string, nodes ...string) (map[string]string, string) {
	shared := t.TempDir()
	roots := map[string]string{}
	for _, n := range nodes {
		for _, d := range []string{"ganesha/v4recov", "sm"} {
			if err := os.MkdirAll(filepath.Join(shared, n, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		roots[n] = filepath.Join(shared, n, "ganesha")
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				if err := os.Symlink(roots[o], filepath.Join(roots[n], o)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	record := filepath.Join(shared, holder, "sm", "127.0.0.1")
	if err := os.WriteFile(record, []byte("0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff 127.0.0.1 "+holder+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return roots, record
}

// nfsv3Trigger is what the released-client tests share: a fake ganesha, a
// fake NFSv3 client answering SM_NOTIFY where the trigger's notifier asks,
// the shared NFS state of nodes (holder's statd monitoring the client, see
// nfsLayout) and, per node, the trigger's environment for VIP 127.0.0.5.
func nfsv3Trigger(t *testing.T, holder string, nodes ...string) (fake *ganeshatest.Ganesha, client *nsmtest.Client, roots map[string]string, record string, on func(node string) map[string]string) {
	t.Helper()
	bus := ganeshatest.Bus(t)
	fake = ganeshatest.Serve(t, bus)
	client = nsmtest.Start(t)
	nsmPortmapPort = client.PortmapPort()
	t.Cleanup(func() { nsmPortmapPort = 0 })
	roots, record = nfsLayout(t, holder, nodes...)
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5")
	on = func(n string) map[string]string { return with(env, "OCF_RESKEY_recovery_root", roots[n]) }
	return fake, client, roots, record, on
}

// startedOn starts the instance of env (its state: started here), without
// a previous owner to take over.
func startedOn(t *testing.T, env map[string]string) {
	t.Helper()
	st := with(env)
	delete(st, "OCF_RESKEY_CRM_meta_on_node") // no owner to look up in the CIB
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "start", st); code != ocf.Success {
		t.Fatalf("start = %v: %s", code, stderr)
	}
}

// unmonitorOnRelease makes the fake ganesha do what ganesha's release does
// to the NFSv3 clients (SM_UNMON to the node's statd, which deletes their
// records), and fails the test if the record was not kept before.
func unmonitorOnRelease(t *testing.T, fake *ganeshatest.Ganesha, record, keptDir, ip string) {
	fake.OnGrace(func(arg string) {
		if !strings.HasPrefix(arg, "2:") {
			return
		}
		if b, err := os.ReadFile(filepath.Join(keptDir, "nsm-released-"+ip)); err != nil || !strings.Contains(string(b), "127.0.0.1") {
			t.Errorf("release %q before the clients were kept: %q %v", arg, b, err)
		}
		if err := os.Remove(record); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	})
}

// A graceful move (n1's instance stops, n2's starts): ganesha's release of
// the address's clients at n1's stop unmonitors them, and n1's statd
// deletes their records; they were kept before, and the NFSv3 clients are
// notified from the address anyway.
func TestTriggerNotifiesReleasedNFSv3Clients(t *testing.T) {
	nsmInProcess(t)
	fake, client, roots, record, on := nfsv3Trigger(t, "n1", "n1", "n2")
	unmonitorOnRelease(t, fake, record, filepath.Dir(roots["n1"]), "127.0.0.5")
	startedOn(t, on("n1"))
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "pre", "stop", "n2", "n1")); code != ocf.Success {
		t.Fatalf("pre-stop = %v: %s", code, stderr)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n1"), "OCF_RESKEY_CRM_meta_on_node", "n1")); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "2:127.0.0.5" {
		t.Fatalf("ganesha got %q at the stop, want the release 2:127.0.0.5", got)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("the release did not unmonitor the client: %v", err)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n2"), "n2", "post", "start", "n2", "n1")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 || got[0].MonName != "127.0.0.5" {
		t.Fatalf("the released client got %+v, want one SM_NOTIFY naming 127.0.0.5", got)
	}
	// kept once: the next takeover notifies the monitor lists only
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "post", "start", "n1", "n2")); code != ocf.Success {
		t.Fatalf("post-start back = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 {
		t.Errorf("after the move back the client got %d notifications, want still 1", len(got))
	}
}

// A pre-stop notification is no stop: Pacemaker may abort the transition
// after it (a failed monitor's cleanup coming in, as when ganesha is killed
// and restarted) and leave the instance, and the address, where they are.
// Nothing is released then: the clients stay this node's, its statd goes
// on monitoring them. Only the stop of an instance started here releases.
func TestTriggerPreStopReleasesNothing(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	roots, record := nfsLayout(t, "n1", "n1", "n2")
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5", "OCF_RESKEY_recovery_root", roots["n1"])
	startedOn(t, env)
	for _, stop := range []string{"n1", "n1 n2"} {
		if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "pre", "stop", "n1 n2", stop)); code != ocf.Success {
			t.Fatalf("pre-stop = %v: %s", code, stderr)
		}
	}
	// the transition is aborted: no stop
	if got := fake.Calls(); len(got) != 0 {
		t.Fatalf("ganesha got %q after pre-stop notifications alone, want nothing (the address may stay)", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(roots["n1"]), "nsm-released-127.0.0.5")); !os.IsNotExist(err) {
		t.Errorf("clients kept as released after a pre-stop alone: %v", err)
	}
	if code, _ := runAgent(t, ganeshaTriggerAgent(), "monitor", env); code != ocf.Success {
		t.Fatalf("monitor after the aborted transition = %v, want running", code)
	}
	// the stop of an instance that is not started here (after a failed
	// start, or a stop Pacemaker repeats) has no address to give up
	other := with(env, "OCF_RESOURCE_INSTANCE", "vip2_trigger:0")
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", other); code != ocf.Success {
		t.Fatalf("stop of an instance not started = %v: %s", code, stderr)
	}
	if got := fake.Calls(); len(got) != 0 {
		t.Fatalf("ganesha got %q from the stop of an instance not started here", got)
	}
	// the real stop releases, after keeping the NFSv3 clients
	unmonitorOnRelease(t, fake, record, filepath.Dir(roots["n1"]), "127.0.0.5")
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "2:127.0.0.5" {
		t.Fatalf("ganesha got %q at the stop, want 2:127.0.0.5", got)
	}
	if code, _ := runAgent(t, ganeshaTriggerAgent(), "stop", env); code != ocf.Success || len(fake.Calls()) != 1 {
		t.Fatalf("a second stop = %v, sent %q: want success and nothing more", code, fake.Calls())
	}
}

// The trigger restarted in place (ganesha killed and restarted: the stop
// on n1, then a new ganesha, whose start unmonitors every client, then the
// post-start on n1): the clients are taken back (grace for n1) and notified.
func TestTriggerRestartInPlaceNotifiesNFSv3Clients(t *testing.T) {
	nsmInProcess(t)
	fake, client, _, record, on := nfsv3Trigger(t, "n1", "n1", "n2")
	env := on("n1")
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "pre", "stop", "n1", "n1")); code != ocf.Success {
		t.Fatalf("pre-stop = %v: %s", code, stderr)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(env, "OCF_RESKEY_CRM_meta_on_node", "n1")); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	if err := os.Remove(record); err != nil { // the new ganesha's SM_UNMON_ALL
		t.Fatal(err)
	}
	startedOn(t, env)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "post", "start", "n1", "n1")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 || got[0].MonName != "127.0.0.5" {
		t.Errorf("after the restart in place the client got %+v, want one SM_NOTIFY naming 127.0.0.5", got)
	}
	if got := strings.Join(fake.Calls(), " "); got != "2:127.0.0.5 5:n1" {
		t.Errorf("ganesha got %q, want the release then grace for n1", got)
	}
}

// The address leaves n1 (ganesha killed there: nothing to release, the list
// kept) and comes back from n2 before n2 notified anyone: n1's takeover
// notifies what n1 kept.
func TestTriggerNotifiesOwnReleasedNFSv3Clients(t *testing.T) {
	nsmInProcess(t)
	_, client, _, record, on := nfsv3Trigger(t, "n1", "n1", "n2")
	startedOn(t, on("n1"))
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n1"), "OCF_RESKEY_CRM_meta_on_node", "n1")); code != ocf.Success {
		t.Fatalf("stop = %v: %s", code, stderr)
	}
	if err := os.Remove(record); err != nil { // n1's new ganesha's SM_UNMON_ALL
		t.Fatal(err)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "post", "start", "n1", "n2")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 || got[0].MonName != "127.0.0.5" {
		t.Errorf("the client n1 kept got %+v, want one SM_NOTIFY naming 127.0.0.5", got)
	}
}

// The address passes through a node that never has it up: n1 gives it up
// (its ganesha had died: its clients kept, then unmonitored by the new
// ganesha), n2 takes over n1's clients but the transition is aborted
// before the address comes up there (its SM_NOTIFY helper notifies
// nobody), and n3 takes it over from n2. The clients n1 kept follow the
// address: n3 notifies them.
func TestTriggerNotifiesClientsKeptTwoOwnersBefore(t *testing.T) {
	_, client, roots, record, on := nfsv3Trigger(t, "n1", "n1", "n2", "n3")
	startedOn(t, on("n1"))
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n1"), "OCF_RESKEY_CRM_meta_on_node", "n1")); code != ocf.Success {
		t.Fatalf("stop on n1 = %v: %s", code, stderr)
	}
	if err := os.Remove(record); err != nil { // n1's new ganesha's SM_UNMON_ALL
		t.Fatal(err)
	}
	// n2: the takeover, but no helper gets to notify (the address never came up)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n2"), "n2", "post", "start", "n2", "n1")); code != ocf.Success {
		t.Fatalf("post-start on n2 = %v: %s", code, stderr)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n2"), "OCF_RESKEY_CRM_meta_on_node", "n2")); code != ocf.Success {
		t.Fatalf("stop on n2 = %v: %s", code, stderr)
	}
	nsmInProcess(t)
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n3"), "n3", "post", "start", "n3", "n2")); code != ocf.Success {
		t.Fatalf("post-start on n3 = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 || got[0].MonName != "127.0.0.5" {
		t.Fatalf("the client n1 kept got %+v from n3's takeover of n2, want one SM_NOTIFY naming 127.0.0.5", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(roots["n1"]), "nsm-released-127.0.0.5")); !os.IsNotExist(err) {
		t.Errorf("the kept list is still there after the notification: %v", err)
	}
}

// The address comes back before a notified client has reclaimed (so it is
// in no statd list yet): n1 stops, n2 takes over and notifies the client,
// and n2 stops again at once (n1's services are back: the address goes
// home). n1's takeover must notify the client once more, from the list n2
// carried; else its lockd never reclaims on n1 and the lock is lost
// without a word (seen with kill-ctdbd under the kernel client).
func TestTriggerCarriesNotifiedClients(t *testing.T) {
	nsmInProcess(t)
	fake, client, roots, record, on := nfsv3Trigger(t, "n1", "n1", "n2")
	unmonitorOnRelease(t, fake, record, filepath.Dir(roots["n1"]), "127.0.0.5")
	startedOn(t, on("n1"))
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n1"), "OCF_RESKEY_CRM_meta_on_node", "n1")); code != ocf.Success {
		t.Fatalf("stop on n1 = %v: %s", code, stderr)
	}
	fake.OnGrace(nil)
	startedOn(t, on("n2"))
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n2"), "n2", "post", "start", "n2", "n1")); code != ocf.Success {
		t.Fatalf("post-start on n2 = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 {
		t.Fatalf("n2's takeover: %d notifications, want 1", len(got))
	}
	// n2's statd has no record of the client: it has not reclaimed yet.
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "stop", with(on("n2"), "OCF_RESKEY_CRM_meta_on_node", "n2")); code != ocf.Success {
		t.Fatalf("stop on n2 = %v: %s", code, stderr)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "post", "start", "n1", "n2")); code != ocf.Success {
		t.Fatalf("post-start on n1 = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 2 || got[1].MonName != "127.0.0.5" {
		t.Fatalf("after the address came home the client got %+v, want a second SM_NOTIFY naming 127.0.0.5", got)
	}
	// Carried once: nothing left to notify by a later takeover.
	for _, n := range []string{"n1", "n2"} {
		for _, f := range []string{"nsm-released-127.0.0.5", "nsm-notified-127.0.0.5"} {
			p := filepath.Join(filepath.Dir(roots[n]), f)
			if n == "n1" && f == "nsm-notified-127.0.0.5" {
				continue // n1 notified it now: carried until its next stop
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s still there: %v", p, err)
			}
		}
	}
}

// With the nodes' state on shared storage, a start records the address's
// owner there, not in the CIB (whose change would abort the transition
// that is about to start the address), and the next start elsewhere reads
// it there; a cluster upgraded from the node attribute has its first start
// read the CIB.
func TestTriggerOwnerOnSharedStorage(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	nsmInProcess(t)
	roots, _ := nfsLayout(t, "n3", "n1", "n2", "n3")
	fo := &fakeOwners{latest: map[string]string{"vip1_trigger": "n3"}, seq: 4}
	agent := newGaneshaTriggerAgent(fo)
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5")
	on := func(n string) map[string]string {
		return with(env, "OCF_RESKEY_recovery_root", roots[n], "OCF_RESKEY_CRM_meta_on_node", n)
	}

	if code, stderr := runAgent(t, agent, "start", on("n1")); code != ocf.Success {
		t.Fatalf("start on n1 = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n3" {
		t.Fatalf("n1's start: ganesha got %q, want 5:n3 (the owner the CIB recorded)", got)
	}
	if len(fo.recorded) != 0 {
		t.Errorf("the start wrote the owner into the CIB: %v", fo.recorded)
	}
	file := filepath.Join(filepath.Dir(filepath.Dir(roots["n1"])), "storhaug-owner-vip1_trigger")
	if b, err := os.ReadFile(file); err != nil || string(b) != "n1 5\n" {
		t.Errorf("%s: %q %v, want \"n1 5\"", file, b, err)
	}

	if code, stderr := runAgent(t, agent, "stop", on("n1")); code != ocf.Success {
		t.Fatalf("stop on n1 = %v: %s", code, stderr)
	}
	if code, stderr := runAgent(t, agent, "start", on("n2")); code != ocf.Success {
		t.Fatalf("start on n2 = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n3 2:127.0.0.5 5:n1" { // n1 released the address at its stop
		t.Errorf("n2's start after n1's: ganesha got %q, want 5:n3 2:127.0.0.5 5:n1", got)
	}
	if len(fo.recorded) != 0 {
		t.Errorf("the starts wrote the owner into the CIB: %v", fo.recorded)
	}
}
