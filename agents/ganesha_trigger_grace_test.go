package agents

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ganesha/ganeshatest"
	"github.com/storhaug/storhaug/ocf"
)

// No test leaves the SM_NOTIFY helper behind (the running binary is the
// test binary, not storhaug): the tests that look at SM_NOTIFY run it in
// the process (nsmInProcess); for the others it is not started.
func init() {
	nsmSpawn = func(*ocf.Request, netip.Addr, []string) error { return nil }
}

// nsmInProcess makes the trigger's SM_NOTIFY helper run in the test's
// process, to its end, where the agent would leave a process behind.
func nsmInProcess(t *testing.T) *[]string {
	var spawned []string
	old := nsmSpawn
	nsmSpawn = func(r *ocf.Request, ip netip.Addr, stopped []string) error {
		spawned = append(spawned, ip.String()+"@"+strings.Join(stopped, ","))
		if err := waitLocal(r.Context(), ip); err != nil {
			return err
		}
		notifyNSM(r, ip, stopped)
		return nil
	}
	t.Cleanup(func() { nsmSpawn = old })
	return &spawned
}

// The takeover happens in start, which setup orders before the VIP: ganesha
// is in grace for the previous owner's clients before the address comes up
// (and so before any client reconnects or is tickled). The post-start
// notification does not take them over twice; it takes over only what start
// did not know of (a second node lost in the same transition). A takeover
// ganesha refuses fails the start: the address must not come up
// unprotected.
func TestTriggerTakesOverAtStart(t *testing.T) {
	bus := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, bus)
	spawned := nsmInProcess(t)
	root := t.TempDir()
	for _, n := range []string{"n1", "n2"} {
		os.MkdirAll(filepath.Join(root, n, "v4recov"), 0o755)
	}
	fo := &fakeOwners{latest: map[string]string{"vip1_trigger": "n2"}, seq: 7}
	agent := newGaneshaTriggerAgent(fo)
	env := with(triggerEnv(t, bus), "OCF_RESKEY_CRM_meta_on_node", "n3", "OCF_RESKEY_ip", "127.0.0.5", "OCF_RESKEY_recovery_root", root)

	if code, stderr := runAgent(t, agent, "start", env); code != ocf.Success {
		t.Fatalf("start = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n2" {
		t.Fatalf("after start (before the address is up) ganesha got %q, want 5:n2", got)
	}
	if got := strings.Join(*spawned, " "); got != "127.0.0.5@n2" {
		t.Errorf("SM_NOTIFY helper started for %q, want 127.0.0.5@n2", got)
	}
	for _, stop := range []string{"", "n2"} {
		if code, stderr := runAgent(t, agent, "notify", notifyEnv(env, "n3", "post", "start", "n3", stop)); code != ocf.Success {
			t.Fatalf("post-start = %v: %s", code, stderr)
		}
		if got := strings.Join(fake.Calls(), " "); got != "5:n2" {
			t.Fatalf("post-start (stopped %q) after a start that took n2 over: ganesha got %q, want only 5:n2", stop, got)
		}
	}
	// two nodes lost at once: start knew of one
	if code, stderr := runAgent(t, agent, "notify", notifyEnv(env, "n3", "post", "start", "n3", "n1 n2")); code != ocf.Success {
		t.Fatalf("post-start = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n2 5:n1" {
		t.Fatalf("post-start with n1 and n2 stopped: ganesha got %q, want 5:n2 5:n1", got)
	}

	// by address: the address's recovery directory leads to n2's, one grace
	runAgent(t, agent, "stop", env)
	fo.latest["vip1_trigger"] = "n2" // the address went back to n2 meanwhile
	ipEnv := with(env, "OCF_RESKEY_name_form", "ip")
	if code, stderr := runAgent(t, agent, "start", ipEnv); code != ocf.Success {
		t.Fatalf("start by address = %v: %s", code, stderr)
	}
	if got := strings.Join(fake.Calls(), " "); got != "5:n2 5:n1 2:127.0.0.5 5:127.0.0.5" {
		t.Fatalf("stop, then start by address: ganesha got %q", got)
	}
	if target, err := os.Readlink(filepath.Join(root, "127.0.0.5")); err != nil || target != "n2" {
		t.Errorf("%s/127.0.0.5 -> %q, %v; want n2", root, target, err)
	}
	runAgent(t, agent, "notify", notifyEnv(ipEnv, "n3", "post", "start", "n3", "n2"))
	if got := strings.Join(fake.Calls(), " "); got != "5:n2 5:n1 2:127.0.0.5 5:127.0.0.5" {
		t.Fatalf("post-start by address after start took over: ganesha got %q", got)
	}

	// ganesha refuses: start fails, naming ganesha's reason
	runAgent(t, agent, "stop", env)
	fo.latest["vip1_trigger"] = "n2"
	fake.SetRefuse("not now")
	code, stderr := runAgent(t, agent, "start", env)
	if code != ocf.ErrGeneric || !strings.Contains(stderr, "not now") {
		t.Errorf("start with the takeover refused = %v, want 1 with ganesha's reason\n%s", code, stderr)
	}
	if code, _ := runAgent(t, agent, "monitor", env); code != ocf.NotRunning {
		t.Errorf("monitor after a failed start = %v, want 7", code)
	}
}

// The SM_NOTIFY helper waits for the address, within its deadline.
func TestTriggerNSMWaitsForTheAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := waitLocal(ctx, netip.MustParseAddr("127.0.0.5")); err != nil {
		t.Errorf("127.0.0.5 (local): %v", err)
	}
	// an address no interface here has: a bind fails, nothing is sent
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := waitLocal(ctx, netip.MustParseAddr("192.0.2.77")); err == nil || !strings.Contains(err.Error(), "did not come up") {
		t.Errorf("192.0.2.77: %v, want a deadline error", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("waitLocal outlived its deadline: %v", d)
	}
}
