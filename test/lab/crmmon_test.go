package lab

import (
	"testing"
)

func TestOptions(t *testing.T) {
	t.Setenv("STORHAUG_LAB_PREFIX", "")
	o := Options{}
	if err := o.normalize(); err != nil || o.Prefix != "shlab" || o.Nodes != 3 || o.Clients != 1 || o.TokenMS != 1000 {
		t.Errorf("defaults: %+v %v", o, err)
	}
	for _, bad := range []Options{
		{Prefix: "Bad"}, {Prefix: "waytoolongprefix"}, {Prefix: "a-b"}, {Nodes: 10},
		{Samba: Started, CTDB: Prepared}, {Ganesha: Started, DBus: Off},
		{Storhaug: "/nonexistent/storhaug"}, {NFSv3: true, NFSv4Only: true},
	} {
		if err := bad.normalize(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	// Kernel clients turn NFSv3 on, unless NFSv4 only is asked for.
	for _, tc := range []struct {
		o    Options
		nfs3 bool
	}{{Options{KernelClients: 1}, true}, {Options{KernelClients: 1, NFSv4Only: true}, false}} {
		if err := tc.o.normalize(); err != nil || tc.o.NFSv3 != tc.nfs3 {
			t.Errorf("%+v: NFSv3 %v (%v), want %v", tc.o, tc.o.NFSv3, err, tc.nfs3)
		}
	}
	t.Setenv("STORHAUG_LAB_PREFIX", "eng2")
	if DefaultPrefix() != "eng2" {
		t.Error("STORHAUG_LAB_PREFIX ignored")
	}
	if re := nsRE("shlab"); !re.MatchString("shlab-n1") || re.MatchString("shlab2-n1") || re.MatchString("shlab-n1x") || !re.MatchString("shlab-br") {
		t.Error("nsRE matches the wrong names")
	}
}
