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

// A graceful move (pre-stop on n1, post-start on n2): ganesha's release of
// the address's clients on n1 unmonitors them, and n1's statd deletes
// their records; the NFSv3 clients are notified from the address anyway.
func TestTriggerNotifiesReleasedNFSv3Clients(t *testing.T) {
	bus := ganeshatest.Bus(t)
	ganeshatest.Serve(t, bus)
	nsmInProcess(t)
	client := nsmtest.Start(t)
	nsmPortmapPort = client.PortmapPort()
	t.Cleanup(func() { nsmPortmapPort = 0 })
	roots, record := nfsLayout(t, "n1", "n1", "n2")
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5")
	on := func(n string) map[string]string { return with(env, "OCF_RESKEY_recovery_root", roots[n]) }
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "pre", "stop", "n2", "n1")); code != ocf.Success {
		t.Fatalf("pre-stop = %v: %s", code, stderr)
	}
	// ganesha's release: SM_UNMON to n1's statd, which deletes the record
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
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

// The trigger restarted in place (ganesha killed and restarted: the pre-stop
// on n1, then a new ganesha, whose start unmonitors every client, then the
// post-start on n1): the clients are taken back (grace for n1) and notified.
func TestTriggerRestartInPlaceNotifiesNFSv3Clients(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	nsmInProcess(t)
	client := nsmtest.Start(t)
	nsmPortmapPort = client.PortmapPort()
	t.Cleanup(func() { nsmPortmapPort = 0 })
	roots, record := nfsLayout(t, "n1", "n1", "n2")
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5", "OCF_RESKEY_recovery_root", roots["n1"])
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "pre", "stop", "n1", "n1")); code != ocf.Success {
		t.Fatalf("pre-stop = %v: %s", code, stderr)
	}
	if err := os.Remove(record); err != nil { // the new ganesha's SM_UNMON_ALL
		t.Fatal(err)
	}
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(env, "n1", "post", "start", "n1", "n1")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := client.Notifications(); len(got) != 1 || got[0].MonName != "127.0.0.5" {
		t.Errorf("after the restart in place the client got %+v, want one SM_NOTIFY naming 127.0.0.5", got)
	}
	if got := strings.Join(fake.Calls(), " "); !strings.HasSuffix(got, "5:n1") {
		t.Errorf("ganesha got %q, want the release then grace for n1", got)
	}
}

// The address leaves n1 (ganesha killed there: nothing to release, the list
// kept) and comes back from n2 before n2 notified anyone: n1's takeover
// notifies what n1 kept.
func TestTriggerNotifiesOwnReleasedNFSv3Clients(t *testing.T) {
	bus := ganeshatest.Bus(t)
	ganeshatest.Serve(t, bus)
	nsmInProcess(t)
	client := nsmtest.Start(t)
	nsmPortmapPort = client.PortmapPort()
	t.Cleanup(func() { nsmPortmapPort = 0 })
	roots, record := nfsLayout(t, "n1", "n1", "n2")
	env := with(triggerEnv(t, bus), "OCF_RESKEY_ip", "127.0.0.5")
	on := func(n string) map[string]string { return with(env, "OCF_RESKEY_recovery_root", roots[n]) }
	if code, stderr := runAgent(t, ganeshaTriggerAgent(), "notify", notifyEnv(on("n1"), "n1", "pre", "stop", "n2", "n1")); code != ocf.Success {
		t.Fatalf("pre-stop = %v: %s", code, stderr)
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
