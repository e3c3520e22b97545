// Command lab brings the storhaug lab cluster up and down by hand:
//
//	lab up [-n N] [--prefix P] [--clients C] [--kernel-clients K] [--storhaug bin/storhaug] [--start svc,...] [--prepare svc,...]
//	lab down [--prefix P]
//	lab status [--prefix P]
//	lab shell [--prefix P] NODE [COMMAND...]
//
// Subcommands live in a map; another file of this package may add one with
// register("name", usage, func(args []string) error) in its init().
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

type subcommand struct {
	usage string
	run   func(args []string) error
}

var subcommands = map[string]subcommand{}

func register(name, usage string, run func(args []string) error) {
	subcommands[name] = subcommand{usage: usage, run: run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lab COMMAND [ARGS]; commands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, subcommands[n].usage)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	sc, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "lab: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := sc.run(os.Args[2:]); err != nil {
		if ee, ok := err.(*exec.ExitError); ok { // from shell: the command's own code
			os.Exit(ee.ExitCode())
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "lab") {
			msg = "lab: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// prefixFlag adds --prefix to a flag set.
func prefixFlag(fs *flag.FlagSet) *string {
	return fs.String("prefix", lab.DefaultPrefix(), "lab prefix (env STORHAUG_LAB_PREFIX)")
}

func init() {
	register("up", "bring a lab up (-n N --prefix P --storhaug BIN --start svc,... --prepare svc,...)", cmdUp)
	register("down", "tear the lab down (--prefix P)", cmdDown)
	register("status", "show the lab's nodes and Pacemaker's view (--prefix P)", cmdStatus)
	register("shell", "a shell (or COMMAND) inside NODE (--prefix P NODE [COMMAND...])", cmdShell)
	register("guest", "run COMMAND in kernel client K and print its output (--prefix P K COMMAND...)", cmdGuest)
}

func parseModes(o *lab.Options, list string, m lab.Mode) error {
	for _, s := range strings.Split(list, ",") {
		switch strings.TrimSpace(s) {
		case "":
		case "pacemaker":
			o.Pacemaker = m
		case "ctdb":
			o.CTDB = m
		case "samba", "smbd", "smb":
			o.Samba = m
		case "dbus":
			o.DBus = m
		case "ganesha", "nfs":
			o.Ganesha = m
		default:
			return fmt.Errorf("unknown service %q (pacemaker, ctdb, samba, dbus, ganesha)", s)
		}
	}
	return nil
}

func cmdUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	n := fs.Int("n", 3, "number of nodes")
	clients := fs.Int("clients", 1, "number of client namespaces")
	kclients := fs.Int("kernel-clients", 0, "number of kernel clients (user-mode-linux guests; turns NFSv3 on)")
	prefix := prefixFlag(fs)
	bin := fs.String("storhaug", "bin/storhaug", "storhaug .deb (make deb) or binary to install as the OCF provider (\"\" for none)")
	start := fs.String("start", "pacemaker,dbus", "services the lab starts")
	prepare := fs.String("prepare", "ctdb,samba,ganesha", "services the lab only configures")
	fs.Parse(args)
	o := lab.Options{Prefix: *prefix, Nodes: *n, Clients: *clients, KernelClients: *kclients, Logf: logf}
	if *bin != "" {
		if _, err := os.Stat(*bin); err == nil {
			o.Storhaug = *bin
		} else {
			logf("no %s: storhaug not installed in the nodes (make build)", *bin)
		}
	}
	if err := parseModes(&o, *prepare, lab.Prepared); err != nil {
		return err
	}
	if err := parseModes(&o, *start, lab.Started); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("lab %s up: %d nodes (%s), shared dir %s\n", l.Prefix(), len(l.Nodes()), l.TimingsString(), l.SharedDir())
	for _, nd := range l.Nodes() {
		fmt.Printf("  %s  %s  %s  netns %s  pid %d  logs %s\n", nd.Name(), nd.Addr4(), nd.Addr6(), nd.NetNS(), nd.Pid(), nd.LogDir())
	}
	for _, c := range l.Clients() {
		fmt.Printf("  %s  %s  %s  netns %s\n", c.Name(), c.Addr4(), c.Addr6(), c.NetNS())
	}
	for _, g := range l.Guests() {
		fmt.Printf("  %s  %s  %s  kernel client (hostname %s, pid %d, booted in %.1fs, console %s)\n",
			g.Name(), g.Addr4(), g.Addr6(), g.Hostname(), g.Pid(), g.BootTime().Seconds(), g.Dir()+"/console.log")
	}
	if o.Pacemaker != lab.Off {
		fmt.Printf("fencing: stonith:%s (resource %s) through the lab's fence daemon on %s; stonith_admin --history NODE in a node\n",
			lab.FenceAgent, lab.FenceResource, l.FenceSocket())
	}
	fmt.Printf("shell: make lab-shell NODE=n1 (or go run ./test/lab/cmd/lab shell --prefix %s n1); down: make lab-down\n", l.Prefix())
	return nil
}

func cmdDown(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	prefix := prefixFlag(fs)
	fs.Parse(args)
	t0 := time.Now()
	if err := lab.Sweep(*prefix); err != nil {
		return err
	}
	if left := lab.Leftovers(*prefix); len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, "; "))
	}
	fmt.Printf("lab %s down in %.1fs\n", *prefix, time.Since(t0).Seconds())
	return nil
}

func cmdStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	prefix := prefixFlag(fs)
	fs.Parse(args)
	l, err := lab.Attach(*prefix, nil)
	if err != nil {
		return err
	}
	o := l.Options()
	fmt.Printf("lab %s: root %s, shared %s\n", l.Prefix(), l.Root(), l.SharedDir())
	fmt.Printf("services: pacemaker=%s ctdb=%s samba=%s dbus=%s ganesha=%s\n", o.Pacemaker, o.CTDB, o.Samba, o.DBus, o.Ganesha)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range l.Nodes() {
		state := "DOWN"
		if nd.Alive() {
			state = "up, pid " + strconv.Itoa(nd.Pid())
			procs, _ := nd.Procs()
			seen := map[string]bool{}
			var names []string
			for _, p := range procs {
				if p.Pid != 1 && !seen[p.Comm] {
					seen[p.Comm] = true
					names = append(names, p.Comm)
				}
			}
			sort.Strings(names)
			state += ": " + strings.Join(names, " ")
		}
		fmt.Printf("  %s %s: %s\n", nd.Name(), nd.Addr4(), state)
	}
	if s, err := l.CrmMon(ctx); err == nil {
		fmt.Printf("pacemaker (from %s): DC %q quorum %v online %v offline %v\n", s.From, s.DC, s.Quorum, s.Online(), s.Offline())
		for _, r := range s.Resources {
			fmt.Printf("  %-20s %-28s %-10s %v failed=%v\n", r.ID, r.Agent, r.Role, r.Nodes, r.Failed)
		}
		for _, f := range s.Failures {
			fmt.Printf("  FAILED %s on %s: %d %s %s\n", f.OpKey, f.Node, f.ExitCode, f.ExitStatus, f.ExitReason)
		}
	} else {
		fmt.Printf("pacemaker: %v\n", err)
	}
	return nil
}

func cmdShell(args []string) error {
	fs := flag.NewFlagSet("shell", flag.ExitOnError)
	prefix := prefixFlag(fs)
	fs.Parse(args)
	if fs.NArg() < 1 {
		return fmt.Errorf("shell: which node? (n1, n2, ...)")
	}
	l, err := lab.Attach(*prefix, nil)
	if err != nil {
		return err
	}
	nd := l.Node(fs.Arg(0))
	if nd == nil {
		return fmt.Errorf("shell: no node %q", fs.Arg(0))
	}
	if !nd.Alive() {
		return fmt.Errorf("shell: node %s is down", nd.Name())
	}
	argv := fs.Args()[1:]
	if len(argv) == 0 {
		argv = []string{"bash", "--norc", "-i"}
	}
	cmd := nd.Command(context.Background(), []string{"PS1=[" + l.Prefix() + " " + nd.Name() + " \\W]# ", "TERM=" + os.Getenv("TERM")}, argv[0], argv[1:]...)
	cmd.SysProcAttr = nil // keep the terminal's process group
	cmd.Cancel = nil
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signal.Ignore(os.Interrupt)
	return cmd.Run()
}

func cmdGuest(args []string) error {
	fs := flag.NewFlagSet("guest", flag.ExitOnError)
	prefix := prefixFlag(fs)
	fs.Parse(args)
	if fs.NArg() < 2 {
		return fmt.Errorf("guest: want a kernel client (k1, ...) and a command")
	}
	l, err := lab.Attach(*prefix, nil)
	if err != nil {
		return err
	}
	for _, g := range l.Guests() {
		if g.Name() != fs.Arg(0) {
			continue
		}
		r, err := g.Run(context.Background(), fs.Arg(1), fs.Args()[2:]...)
		fmt.Print(r.Stdout)
		fmt.Fprint(os.Stderr, r.Stderr)
		if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("guest: no kernel client %q", fs.Arg(0))
}
