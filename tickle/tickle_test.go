package tickle

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var sprintf = fmt.Sprintf

func TestPorts(t *testing.T) {
	p, err := ParsePorts("445, 2049 20048-20050")
	if err != nil {
		t.Fatal(err)
	}
	for port, want := range map[uint16]bool{445: true, 2049: true, 20048: true, 20050: true, 20051: false, 80: false} {
		if p.Has(port) != want {
			t.Errorf("Has(%d) = %v", port, !want)
		}
	}
	if p.String() != "445,2049,20048-20050" {
		t.Errorf("String %q", p)
	}
	for _, bad := range []string{"0", "65536", "x", "10-5", "5-"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	all, _ := ParsePorts("")
	if !all.All() || !all.Has(1) {
		t.Error("empty filter is not all ports")
	}
}

func TestDedupAndFilter(t *testing.T) {
	a := conn("198.51.100.10:445", "198.51.100.20:1")
	b := conn("[::ffff:198.51.100.10]:445", "[::ffff:198.51.100.20]:1") // a, mapped
	c := conn("198.51.100.11:445", "198.51.100.20:2")
	d := conn("198.51.100.10:80", "198.51.100.20:3")
	if a != b {
		t.Fatalf("NewConn does not unmap: %v %v", a, b)
	}
	p, _ := ParsePorts("445")
	got := Dedup(p.Filter(a.Local.Addr(), []Conn{d, b, c, a}))
	if !slices.Equal(got, []Conn{a}) {
		t.Errorf("got %v", got)
	}
}

func TestSchedule(t *testing.T) {
	s := DefaultSchedule
	if s.At(0) != 0 || s.At(1) != 1100*time.Millisecond || s.At(2) != 2200*time.Millisecond {
		t.Errorf("default rounds at %v %v %v", s.At(0), s.At(1), s.At(2))
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Schedule{{0, time.Second}, {3, 400 * time.Millisecond}, {21, time.Second}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if (Schedule{1, 0}).Validate() != nil {
		t.Error("one round needs no interval")
	}
}
