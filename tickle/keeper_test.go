package tickle

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

type fakeNode struct {
	mu     sync.Mutex
	conns  []Conn
	rounds []time.Time
	sent   [][]Conn
	writes [][]Conn
	polled bool
	last   []Conn
}

func (f *fakeNode) record(force bool) ([]Conn, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !force && f.polled && slices.Equal(f.conns, f.last) {
		return nil, false, nil
	}
	f.polled, f.last = true, slices.Clone(f.conns)
	return slices.Clone(f.conns), true, nil
}

func (f *fakeNode) tickle(c []Conn) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rounds = append(f.rounds, time.Now())
	f.sent = append(f.sent, c)
	return len(c), nil
}

func (f *fakeNode) wrote(c []Conn, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, c)
}

func (f *fakeNode) snapshot() (rounds []time.Time, writes [][]Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rounds), slices.Clone(f.writes)
}

func TestKeeperRoundsAndWrites(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.10")
	dir, state := t.TempDir(), t.TempDir()
	old := []Conn{conn("198.51.100.10:445", "198.51.100.20:1"), conn("198.51.100.10:445", "198.51.100.21:2")}
	// The old owner's list, as takeover found it.
	if err := WriteFile(dir, vip, old); err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{conns: []Conn{conn("198.51.100.10:445", "198.51.100.30:3")}}
	k := &Keeper{
		VIP: vip, Dir: dir, Schedule: Schedule{Rounds: 3, Interval: 300 * time.Millisecond},
		Refresh: 100 * time.Millisecond, Record: f.record, Tickle: f.tickle, Wrote: f.wrote,
		local: newLocal(state, vip, ""),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The keeper must not overwrite the old owner's list before the
	// takeover has read it (within the grace period).
	time.Sleep(250 * time.Millisecond)
	if got, err := ReadFile(dir, vip, nil); err != nil || !slices.Equal(got, old) {
		t.Fatalf("keeper overwrote the old list before the takeover: %v %v", got, err)
	}
	first := time.Now()
	if err := newLocal(state, vip, "").stash(old, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	rounds, writes := f.snapshot()
	if len(rounds) != 2 {
		t.Fatalf("%d later rounds, want 2", len(rounds))
	}
	for i, at := range rounds {
		want := first.Add(time.Duration(i+1) * 300 * time.Millisecond)
		// stash mtime has the file system's resolution; allow a little.
		if d := at.Sub(want); d < -20*time.Millisecond || d > 80*time.Millisecond {
			t.Errorf("round %d at %v from the first, want %v", i+2, at.Sub(first), want.Sub(first))
		}
		if !slices.Equal(f.sent[i], old) {
			t.Errorf("round %d sent %v", i+2, f.sent[i])
		}
	}
	if len(writes) != 1 {
		t.Fatalf("%d writes of an unchanged list, want 1", len(writes))
	}
	if got, _ := ReadFile(dir, vip, nil); !slices.Equal(got, f.conns) {
		t.Errorf("file holds %v, want this node's %v", got, f.conns)
	}
	// A new connection is in the file within a refresh.
	f.mu.Lock()
	f.conns = append(f.conns, conn("198.51.100.10:445", "198.51.100.31:4"))
	f.mu.Unlock()
	time.Sleep(250 * time.Millisecond)
	if got, _ := ReadFile(dir, vip, nil); len(got) != 2 {
		t.Errorf("new connection not recorded: %v", got)
	}
	// Once stop released the address, the keeper leaves the final list alone.
	final := []Conn{conn("198.51.100.10:445", "198.51.100.40:9")}
	l := newLocal(state, vip, "")
	unlock, _ := l.lock()
	WriteFile(dir, vip, final)
	l.setReleased(true)
	unlock()
	f.mu.Lock()
	f.conns = nil
	f.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	if got, _ := ReadFile(dir, vip, nil); !slices.Equal(got, final) {
		t.Errorf("keeper overwrote stop's final list: %v", got)
	}
}

func TestKeeperWritesAfterGraceWithoutTakeover(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::10")
	dir := t.TempDir()
	f := &fakeNode{conns: []Conn{conn("[2001:db8::10]:22", "[2001:db8::20]:3")}}
	k := &Keeper{VIP: vip, Dir: dir, Schedule: DefaultSchedule, Refresh: 50 * time.Millisecond,
		Record: f.record, Tickle: f.tickle, local: newLocal(t.TempDir(), vip, ""), grace: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	k.Run(ctx)
	if got, err := ReadFile(dir, vip, nil); err != nil || !slices.Equal(got, f.conns) {
		t.Errorf("got %v, %v", got, err)
	}
	if rounds, _ := f.snapshot(); len(rounds) != 0 {
		t.Errorf("tickled without a takeover")
	}
}
