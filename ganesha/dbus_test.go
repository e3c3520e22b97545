package ganesha_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/ganesha/ganeshatest"
)

func TestGraceArg(t *testing.T) {
	for _, tc := range []struct {
		ev   ganesha.Event
		addr string
		want string // "" means an error is expected
	}{
		{ganesha.TakeIP, "n2", "5:n2"},
		{ganesha.TakeIP, "2001:db8::1", "5:2001:db8::1"},
		{ganesha.ReleaseIP, "198.51.100.10", "2:198.51.100.10"},
		{ganesha.JustGrace, "", "0:"},
		{ganesha.TakeNodeID, "3", "4:3"},
		{ganesha.TakeIP, "", ""},    // the original's "5:" with an empty name
		{ganesha.ReleaseIP, "", ""}, // likewise
		{ganesha.TakeNodeID, "n1", ""},
		{ganesha.TakeIP, "../etc", ""},
		{ganesha.TakeIP, "..", ""},
		// a release by an NFSv4.1 client's owner string
		{ganesha.ReleaseIP, "Linux NFSv4.1 lab-k1/k1", "2:Linux NFSv4.1 lab-k1/k1"},
		{ganesha.ReleaseIP, "a\x00b", ""},
		{ganesha.Event(9), "n1", ""},
	} {
		got, err := ganesha.GraceArg(tc.ev, tc.addr)
		if tc.want == "" {
			if err == nil {
				t.Errorf("GraceArg(%d, %q) = %q, want an error", tc.ev, tc.addr, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("GraceArg(%d, %q) = %q, %v; want %q", tc.ev, tc.addr, got, err, tc.want)
		}
	}
}

func connect(t *testing.T, addr string) *ganesha.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	b, err := ganesha.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The exact strings ganesha receives, IPv6 included (ganesha splits at the
// first colon, so "5:2001:db8::1" is event 5 for 2001:db8::1).
func TestGraceOverBus(t *testing.T) {
	addr := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, addr)
	b := connect(t, addr)
	ctx := context.Background()

	in, err := b.GetGrace(ctx)
	if err != nil || in {
		t.Fatalf("GetGrace before grace = %v, %v; want false, nil", in, err)
	}
	if err := b.Grace(ctx, ganesha.TakeIP, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Grace(ctx, ganesha.TakeIP, "2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Grace(ctx, ganesha.ReleaseIP, "198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	if err := b.Grace(ctx, ganesha.TakeIP, ""); err == nil {
		t.Fatal("grace with an empty name was sent")
	}
	want := []string{"5:n2", "5:2001:db8::1", "2:198.51.100.7"}
	if got := fake.Calls(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ganesha received %q, want %q", got, want)
	}
	in, err = b.GetGrace(ctx)
	if err != nil || !in {
		t.Fatalf("GetGrace after grace = %v, %v; want true, nil", in, err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	pid, err := b.OwnerPID(ctx)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("OwnerPID = %d, %v; want this test's pid %d", pid, err, os.Getpid())
	}
}

// A reply with status false is an error that carries ganesha's message.
func TestGraceRefused(t *testing.T) {
	addr := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, addr)
	fake.SetRefuse("Unable to start grace")
	b := connect(t, addr)
	err := b.Grace(context.Background(), ganesha.TakeIP, "n1")
	var re *ganesha.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Grace = %v, want a *RefusedError", err)
	}
	if re.Msg != "Unable to start grace" || re.Arg != "5:n1" || !strings.Contains(err.Error(), "Unable to start grace") {
		t.Fatalf("RefusedError = %+v (%v)", re, err)
	}
}

// Nobody owns org.ganesha.nfsd: every call says ErrNotRunning.
func TestServiceUnknown(t *testing.T) {
	addr := ganeshatest.Bus(t)
	b := connect(t, addr)
	ctx := context.Background()
	if err := b.Grace(ctx, ganesha.TakeIP, "n1"); !errors.Is(err, ganesha.ErrNotRunning) {
		t.Errorf("Grace = %v, want ErrNotRunning", err)
	}
	if _, err := b.GetGrace(ctx); !errors.Is(err, ganesha.ErrNotRunning) {
		t.Errorf("GetGrace = %v, want ErrNotRunning", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, ganesha.ErrNotRunning) {
		t.Errorf("Ping = %v, want ErrNotRunning", err)
	}
	if _, err := b.OwnerPID(ctx); !errors.Is(err, ganesha.ErrNotRunning) {
		t.Errorf("OwnerPID = %v, want ErrNotRunning", err)
	}
	// and once a ganesha has come and gone again
	fake := ganeshatest.Serve(t, addr)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping with the fake up: %v", err)
	}
	fake.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.Ping(ctx)
		if errors.Is(err, ganesha.ErrNotRunning) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the fake left = %v, want ErrNotRunning", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNoBus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := ganesha.Connect(ctx, "unix:path="+t.TempDir()+"/nobus")
	if !errors.Is(err, ganesha.ErrNoBus) {
		t.Fatalf("Connect to a missing socket = %v, want ErrNoBus", err)
	}
}

// A slow ganesha cannot hold a call past the caller's deadline.
func TestGraceBoundedByDeadline(t *testing.T) {
	addr := ganeshatest.Bus(t)
	fake := ganeshatest.Serve(t, addr)
	fake.SetDelay(3 * time.Second)
	b := connect(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Grace(ctx, ganesha.TakeIP, "n1")
	if err == nil {
		t.Fatal("Grace succeeded past its deadline")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Grace returned after %v, its deadline was 300ms", d)
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error %q does not mention the deadline", err)
	}
}

// What ganesha parses back out of GraceArg's string (split at the first
// colon, event by atoi) is exactly the event and address given.
func FuzzGraceArg(f *testing.F) {
	for _, s := range []string{"n1", "2001:db8::1", "198.51.100.7", "", "a:b:c", "../x", "node-1.example.com"} {
		f.Add(5, s)
	}
	// A release's argument may be an owner string ("..": found by the
	// fuzzer in CI against an older statement of this property).
	f.Add(2, "..")
	f.Add(2, "Linux NFSv4.1 k1/198.51.100.151")
	f.Fuzz(func(t *testing.T, ev int, addr string) {
		arg, err := ganesha.GraceArg(ganesha.Event(ev), addr)
		if err != nil {
			return
		}
		evs, rest, ok := strings.Cut(arg, ":")
		if !ok || evs != strconv.Itoa(ev) || rest != addr {
			t.Fatalf("GraceArg(%d, %q) = %q: ganesha would read event %q address %q", ev, addr, arg, evs, rest)
		}
		if strings.ContainsRune(addr, 0) {
			t.Fatalf("GraceArg(%d, %q) accepted a NUL", ev, addr)
		}
		// A release's argument is matched against addresses and owner
		// strings, any other names a recovery directory.
		if ev != int(ganesha.ReleaseIP) && (strings.Contains(addr, "/") || addr == "." || addr == "..") {
			t.Fatalf("GraceArg(%d, %q) accepted a name that is not one path component", ev, addr)
		}
		if (ev == 2 || ev == 5) && addr == "" {
			t.Fatalf("GraceArg(%d, \"\") accepted an empty name", ev)
		}
	})
}
