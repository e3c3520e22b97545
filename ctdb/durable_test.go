package ctdb

import (
	"reflect"
	"testing"
)

func TestDurableHandleBlockers(t *testing.T) {
	conf := `[global]
	kernel share modes = Yes
[ok]
	path = /a
	posix locking = no
	kernel share modes = no
[defaults]
	path = /b
[off]
	path = /c
	posix locking = False
	kernel share modes = 0
	durable handles = no
	kernel oplocks = on
[homes]
	path = /h
[printers]
	path = /p
[pdf]
	printable = yes
`
	got := DurableHandleBlockers([]byte(conf))
	want := []string{
		"[defaults]: kernel share modes = Yes (in [global]), posix locking = yes (the default)",
		"[off]: durable handles = no, kernel oplocks = on",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := DurableHandleBlockers([]byte("[global]\n\tposix locking = no\n[s]\n\tpath = /s\n")); len(got) != 0 {
		t.Errorf("global posix locking = no: %q", got)
	}
}
