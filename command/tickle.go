package command

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/internal/netnsdo"
	"github.com/storhaug/storhaug/tickle"
)

// stderrLog shows the tickle package's warnings to the admin.
type stderrLog struct{ w io.Writer }

func (l stderrLog) Infof(f string, a ...any)  {}
func (l stderrLog) Debugf(f string, a ...any) {}
func (l stderrLog) Warnf(f string, a ...any)  { fmt.Fprintf(l.w, "storhaug: warning: "+f+"\n", a...) }

func tickleVIP(c *cli.Context) (netip.Addr, error) {
	if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
		return netip.Addr{}, exitWith(2, "options go before the address: storhaug tickle %s [options] VIP", c.Command.Name)
	}
	if c.NArg() != 1 {
		return netip.Addr{}, exitWith(2, "give one address: storhaug tickle %s [options] VIP", c.Command.Name)
	}
	a, err := netip.ParseAddr(c.Args().First())
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, exitWith(2, "%q is not an IPv4 or IPv6 address", c.Args().First())
	}
	return a.Unmap(), nil
}

func tickleConfig(c *cli.Context, vip netip.Addr) (tickle.Config, error) {
	cfg := tickle.Config{VIP: vip, Netns: c.String("netns"), Dir: c.String("tickle-dir"), Log: stderrLog{c.App.ErrWriter}}
	var err error
	if cfg.Ports, err = tickle.ParsePorts(c.String("ports")); err != nil {
		return cfg, exitWith(2, "--ports: %v", err)
	}
	if cfg.Source, err = tickle.ParseSource(c.String("source")); err != nil {
		return cfg, exitWith(2, "--source: %v", err)
	}
	if cfg.Netns != "" {
		if _, err := os.Stat("/run/netns/" + cfg.Netns); err != nil {
			return cfg, exitWith(2, "--netns: no network namespace %q under /run/netns", cfg.Netns)
		}
	}
	return cfg, nil
}

// vipIsLocal reports whether vip is on an interface in the namespace.
func vipIsLocal(netns string, vip netip.Addr) (bool, error) {
	found := false
	err := netnsdo.Do(netns, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == vip {
					found = true
				}
			}
		}
		return nil
	})
	return found, err
}

func permissionHint(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return exitWith(4, "%v (needs root: CAP_NET_ADMIN and CAP_NET_RAW)", err)
	}
	return err
}

func init() { later(tickleCommands) }

// tickleCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func tickleCommands() {
	common := []cli.Flag{
		&cli.StringFlag{Name: "tickle-dir", Usage: "the directory of connection lists (IPaddr3's tickle_dir)"},
		&cli.StringFlag{Name: "netns", Usage: "the network namespace (under /run/netns) the address is in"},
		&cli.StringFlag{Name: "ports", Usage: "only these local ports of the address (445,2049,20048-20050)"},
	}
	register(&cli.Command{
		Name:  "tickle",
		Usage: "show or send the tickle ACKs that make TCP clients of a moved address reconnect",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list the connections of VIP: recorded in --tickle-dir, or live on this node (--live, or no --tickle-dir)",
				ArgsUsage: "VIP",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "live", Usage: "record the connections on this node now"},
					&cli.StringFlag{Name: "source", Value: "auto", Usage: "for --live: auto, conntrack or sockdiag"},
				}, common...),
				Action: func(c *cli.Context) error {
					vip, err := tickleVIP(c)
					if err != nil {
						return err
					}
					cfg, err := tickleConfig(c, vip)
					if err != nil {
						return err
					}
					var conns []tickle.Conn
					from := ""
					if c.Bool("live") || cfg.Dir == "" {
						conns, err = tickle.List(cfg)
						if err != nil {
							return permissionHint(err)
						}
						from = "live on this node"
					} else {
						conns, err = tickle.ReadFile(cfg.Dir, vip, cfg.Log)
						if tickle.IsNotExist(err) {
							return exitWith(1, "no connection list for %s in %s (%s)", vip, cfg.Dir, tickle.Path(cfg.Dir, vip))
						}
						if err != nil {
							return exitWith(1, "%v", err)
						}
						conns = cfg.Ports.Filter(vip, conns)
						from = tickle.Path(cfg.Dir, vip)
					}
					for _, cn := range conns {
						fmt.Fprintln(c.App.Writer, cn)
					}
					fmt.Fprintf(c.App.ErrWriter, "%d connections to %s (%s)\n", len(conns), vip, from)
					return nil
				},
			},
			{
				Name:      "send",
				Usage:     "tickle the clients of VIP recorded in --tickle-dir, from this node (which must hold VIP)",
				ArgsUsage: "VIP",
				Flags: append([]cli.Flag{
					&cli.IntFlag{Name: "rounds", Value: 1, Usage: "rounds of tickles"},
					&cli.DurationFlag{Name: "interval", Value: tickle.DefaultSchedule.Interval, Usage: "time between rounds (at least 600ms)"},
					&cli.BoolFlag{Name: "force", Usage: "send even though VIP is not on this node (the clients' answers then go elsewhere)"},
				}, common...),
				Action: func(c *cli.Context) error {
					vip, err := tickleVIP(c)
					if err != nil {
						return err
					}
					cfg, err := tickleConfig(c, vip)
					if err != nil {
						return err
					}
					if cfg.Dir == "" {
						return exitWith(2, "--tickle-dir is required: the directory the owner of %s recorded its connections in", vip)
					}
					sched := tickle.Schedule{Rounds: c.Int("rounds"), Interval: c.Duration("interval")}
					if err := sched.Validate(); err != nil {
						return exitWith(2, "--rounds/--interval: %v", err)
					}
					local, err := vipIsLocal(cfg.Netns, vip)
					if err != nil {
						return err
					}
					if !local && !c.Bool("force") {
						return exitWith(1, "%s is not on this node: a client's answer to a tickle must reach the address's owner (start the address here first, or --force)", vip)
					}
					conns, err := tickle.ReadFile(cfg.Dir, vip, cfg.Log)
					if tickle.IsNotExist(err) {
						return exitWith(1, "no connection list for %s in %s (%s)", vip, cfg.Dir, tickle.Path(cfg.Dir, vip))
					}
					if err != nil {
						return exitWith(1, "%v", err)
					}
					conns = cfg.Ports.Filter(vip, conns)
					if len(conns) == 0 {
						fmt.Fprintf(c.App.ErrWriter, "no connections to %s recorded: nothing to send\n", vip)
						return nil
					}
					s, err := tickle.OpenSender(cfg.Netns)
					if err != nil {
						return permissionHint(err)
					}
					defer s.Close()
					first := time.Now()
					for k := range sched.Rounds {
						if d := time.Until(first.Add(sched.At(k))); d > 0 {
							select {
							case <-time.After(d):
							case <-c.Context.Done():
								return c.Context.Err()
							}
						}
						n, err := s.Tickle(conns)
						fmt.Fprintf(c.App.ErrWriter, "round %d: %d of %d clients of %s tickled\n", k+1, n, len(conns), vip)
						if err != nil {
							return exitWith(1, "%v", permissionHint(err))
						}
					}
					return nil
				},
			},
		},
	})
}
