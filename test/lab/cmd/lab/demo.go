package main

// lab demo: what `make demo` shows. A 3-node lab with fencing and a kernel
// client (a user-mode-linux guest) comes up; storhaug setup wires SMB
// (Samba through CTDB) and NFS (NFS-Ganesha) into Pacemaker from the
// shipped sample configuration; storhaug status shows the cluster; the
// guest mounts NFSv4.2, v4.1, v3 and SMB 3.1.1 through n3's VIP and runs
// test/workload on each; n3 loses power; the demo prints, as they happen,
// the cluster's steps (from the nodes' logs) and each protocol's stall and
// return, then the data check and the timeline's breakdown, and writes the
// timeline as an SVG picture. Then n3 comes back, teardown, and the lab
// goes down.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

func init() {
	register("demo", "bring up a 3-node lab, storhaug setup, crash a node under SMB and NFS clients, tear down (--prefix P --storhaug BIN --config FILE)", cmdDemo)
}

// The sample's VIPs and their home nodes (examples/storhaug.conf).
var demoHomes = map[string]string{"198.51.100.201": "n1", "198.51.100.202": "n2", "198.51.100.203": "n3"}

const (
	demoVictim = "n3"
	demoVIP    = "198.51.100.203" // n3's VIP
	demoHeir   = "n1"             // next in its failover rotation
)

func vipID(addr string) string { return "storhaug-vip-" + addr }

func section(format string, args ...any) {
	fmt.Printf("\n==> %s\n", fmt.Sprintf(format, args...))
}

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	def := "shdemo"
	if p := os.Getenv("STORHAUG_LAB_PREFIX"); p != "" {
		def = p
	}
	prefix := fs.String("prefix", def, "lab prefix (default $STORHAUG_LAB_PREFIX, else shdemo)")
	bin := fs.String("storhaug", "bin/storhaug", "the storhaug binary (make build)")
	conf := fs.String("config", "examples/storhaug.conf", "the sample configuration")
	workload := fs.String("workload", "bin/workload", "test/workload built for the guest (make demo builds it)")
	svg := fs.String("svg", "bin/demo-timeline.svg", "where to write the crash's timeline picture")
	keep := fs.Bool("keep", false, "leave the lab running at the end (make lab-down --prefix P removes it)")
	fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("demo: the lab needs root (network namespaces, mounts)")
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("demo: %v (run make build first)", err)
	}
	wl, err := os.ReadFile(*workload)
	if err != nil {
		return fmt.Errorf("demo: --workload: %v (make demo builds it: CGO_ENABLED=0 go build -o bin/workload ./test/workload)", err)
	}
	sample, err := os.ReadFile(*conf)
	if err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	start := time.Now()

	section("bringing up the lab: 3 nodes (corosync + Pacemaker), a kernel client, in namespaces")
	l, err := lab.Up(ctx, lab.Options{
		Prefix: *prefix, Nodes: 3, Clients: 1, KernelClients: 1, Storhaug: *bin,
		Pacemaker: lab.Started, DBus: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Ganesha: lab.Prepared,
		Guard: true,
	})
	if err != nil {
		return err
	}
	if !*keep {
		defer func() {
			section("lab down")
			if err := l.Down(); err != nil {
				fmt.Println("lab down:", err)
			} else if left := l.Leftovers(); len(left) > 0 {
				fmt.Println("left behind:", strings.Join(left, ", "))
			} else {
				fmt.Printf("nothing left behind; the demo took %.0fs\n", time.Since(start).Seconds())
			}
		}()
	}
	fmt.Printf("lab %s up (%s)\n", l.Prefix(), l.TimingsString())
	for _, n := range l.Nodes() {
		fmt.Printf("  %s  %s\n", n.Name(), n.Addr4())
	}
	g := l.Guest(1)
	fmt.Printf("  kernel client %s  %s (user-mode-linux, Linux %s, its own NFS client identity), booted in %.1fs\n", g.Hostname(), g.Addr4(), guestKernel(ctx, g), g.BootTime().Seconds())
	fmt.Printf("  fencing on: stonith-enabled=true, device %s (stonith:%s, the lab's power switch)\n", lab.FenceResource, lab.FenceAgent)
	if err := os.WriteFile(filepath.Join(g.Dir(), "workload"), wl, 0o755); err != nil {
		return err
	}
	return runDemo(ctx, l, sample, *svg)
}

func runDemo(ctx context.Context, l *lab.Lab, sample []byte, svg string) error {
	n1 := l.Node("n1")
	storhaug := func(args ...string) (lab.Result, error) {
		r, err := n1.Run(ctx, "/usr/sbin/storhaug", args...)
		if err != nil {
			return r, fmt.Errorf("storhaug %s: %v\n%s", strings.Join(args, " "), err, r.Output())
		}
		return r, nil
	}

	section("the configuration: %s as /etc/sysconfig/storhaug.conf on n1, plus a drop-in for the lab", "examples/storhaug.conf")
	if _, err := n1.Sh(ctx, "mkdir -p /etc/sysconfig/storhaug.d"); err != nil {
		return err
	}
	if err := n1.WriteFile("/etc/sysconfig/storhaug.conf", sample, 0o644); err != nil {
		return err
	}
	dropIn := fmt.Sprintf("HA_NAME=%q\nHA_MNT_DIR=%q\nHA_NFS_MNT_DIR=\".\"\nHA_SMB_MNT_DIR=\"ctdb\"\nHA_VIP_TICKLE_DIR=%q\nHA_VIP_NIC=\"eth0\"\nHA_GANESHA_PARAMS=\"logfile=/var/log/ganesha/ganesha.log\"\n",
		l.Prefix(), l.SharedDir(), filepath.Join(l.SharedDir(), "tickle"))
	if err := n1.WriteFile("/etc/sysconfig/storhaug.d/50-lab.conf", []byte(dropIn), 0o644); err != nil {
		return err
	}
	for _, line := range strings.Split(string(sample), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			fmt.Println("  " + t)
		}
	}
	fmt.Println("  storhaug.d/50-lab.conf:")
	for _, line := range strings.Split(strings.TrimSpace(dropIn), "\n") {
		fmt.Println("    " + line)
	}

	section("storhaug setup (on n1)")
	t0 := time.Now()
	r, err := storhaug("setup")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	fmt.Println(lines[0])
	fmt.Printf("  (%d objects; storhaug setup --dry-run prints them as XML and as pcs commands)\n", len(lines)-1)
	if err := waitAllUp(ctx, l, demoHomes, 4*time.Minute); err != nil {
		return err
	}
	fmt.Printf("every resource running %.1fs after setup\n", time.Since(t0).Seconds())
	r, err = storhaug("setup")
	if err != nil {
		return err
	}
	fmt.Printf("storhaug setup again: %s", r.Stdout)

	section("storhaug status")
	if r, err = storhaug("status"); err != nil {
		return err
	}
	fmt.Print(r.Stdout)

	if err := crashUnderKernelClients(ctx, l, svg); err != nil {
		return err
	}

	section("%s comes back: its VIP returns home (DETERMINISTIC_FAILOVER)", demoVictim)
	t1 := time.Now()
	var failed error
	if err := l.RestoreLink(demoVictim); err != nil {
		return err
	}
	if err := l.Recover(ctx, demoVictim); err != nil {
		return err
	}
	if err := waitAllUp(ctx, l, demoHomes, 3*time.Minute); err != nil {
		failed = fmt.Errorf("after %s came back: %v", demoVictim, err)
		fmt.Println("PROBLEM:", failed)
	} else {
		fmt.Printf("%s rebooted and every VIP at home again after %.1fs\n", demoVictim, time.Since(t1).Seconds())
	}
	if r, err = storhaug("status"); err != nil {
		return err
	}
	fmt.Print(r.Stdout)

	section("storhaug teardown")
	if r, err = storhaug("teardown"); err != nil {
		return err
	}
	lines = strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for _, line := range lines {
		if !strings.HasPrefix(line, "  ") {
			fmt.Println(line)
		}
	}
	return failed
}

// waitAllUp waits until every storhaug resource runs and each VIP is on
// the node given.
func waitAllUp(ctx context.Context, l *lab.Lab, vips map[string]string, timeout time.Duration) error {
	return l.WaitFor(ctx, "storhaug resources up", timeout, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for addr, node := range vips {
			for _, id := range []string{vipID(addr), vipID(addr) + "-trigger"} {
				if got := s.RunningOn(id); len(got) != 1 || got[0] != node {
					return false, fmt.Errorf("%s on %v, want %s", id, got, node)
				}
			}
		}
		for _, id := range []string{"storhaug-ctdb", "storhaug-ganesha"} {
			if got := s.RunningOn(id); len(got) != 3 {
				return false, fmt.Errorf("%s on %v", id, got)
			}
		}
		if p := s.WithRole("storhaug-ctdb", "Promoted"); len(p) != 1 {
			return false, fmt.Errorf("CTDB promoted on %v", p)
		}
		return true, nil
	})
}
