package pacemaker

import (
	"os"
	"testing"
	"time"
)

func TestFencedSince(t *testing.T) {
	b, err := os.ReadFile("testdata/fence_history.xml")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ParseFenceHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(evs), evs)
	}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !evs[3].Completed.IsZero() || evs[3].Fenced() {
		t.Errorf("a pending fencing: %+v", evs[3])
	}
	if evs[1].Fenced() {
		t.Errorf("a failed fencing counts: %+v", evs[1])
	}
	for _, c := range []struct {
		target, since string
		ok            bool
		want          string // completion of the event found
	}{
		{"n3", "2026-12-01T21:00:00Z", true, "2026-12-01T21:30:07Z"}, // the latest success, not the failure
		{"n3", "2026-12-01T21:30:07Z", true, "2026-12-01T21:30:07Z"},
		{"n3", "2026-12-01T21:30:06.600Z", true, "2026-12-01T21:30:07Z"},
		{"n3", "2026-12-01T21:30:07.600Z", false, ""},                     // the same second: maybe before
		{"n3", "2026-12-01T21:30:08Z", false, ""},                         // success before since; the failed and pending ones do not count
		{"n3", "2026-12-01T21:29:00+00:00", true, "2026-12-01T21:30:07Z"}, // 22:30:01+01:00 is 21:30:01Z, earlier
		{"n2", "2026-12-01T21:00:00Z", false, ""},
	} {
		e, ok := FencedSince(evs, c.target, at(c.since))
		if ok != c.ok || ok && !e.Completed.Equal(at(c.want)) {
			t.Errorf("FencedSince(%s, %s) = %+v, %v; want completed %s, %v", c.target, c.since, e, ok, c.want, c.ok)
		}
	}
}
