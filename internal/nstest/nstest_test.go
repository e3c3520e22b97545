package nstest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHostsTalkOverTheBridge(t *testing.T) {
	n := New(t)
	a := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	b := n.AddHost("198.51.100.2/24", "2001:db8::2/64")
	var ln net.Listener
	if err := a.Do(func() (err error) {
		ln, err = net.Listen("tcp", "[::]:7000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	for _, addr := range []string{"198.51.100.1:7000", "[2001:db8::1]:7000"} {
		var got string
		err := b.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 2)
			_, err = c.Read(buf)
			got = string(buf)
			return err
		})
		if err != nil || got != "hi" {
			t.Fatalf("dial %s from %s: %q %v", addr, b.Name, got, err)
		}
	}
	if out := b.Run(t, "ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "198.51.100.2/24") {
		t.Fatalf("Command does not run inside the namespace: %s", out)
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	var names []string
	t.Run("inner", func(t *testing.T) {
		n := New(t)
		h := n.AddHost("198.51.100.1/24")
		names = append(names, n.bridge.Name, h.Name)
	})
	for _, name := range names {
		if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind (%v)", name, err)
		}
	}
}
