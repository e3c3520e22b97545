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
		{Storhaug: "/nonexistent/storhaug"},
	} {
		if err := bad.normalize(); err == nil {
			t.Errorf("%+v: no error", bad)
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
