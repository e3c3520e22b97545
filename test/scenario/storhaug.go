package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/storhaug/storhaug/setup"
	"github.com/storhaug/storhaug/test/lab"
)

// Storhaug is the stack `storhaug setup` builds from a storhaug.conf: the
// shipped sample (Sample, a host path) with a drop-in for the lab's paths,
// one VIP per node at home there.
type Storhaug struct {
	Sample string            // examples/storhaug.conf
	Homes  map[string]string // the sample's VIPs and their home nodes
	// Extra is appended to the lab's drop-in: settings that differ from
	// the sample's (another cluster size: HA_CLUSTER_NODES, HA_VIPS, ...).
	Extra string
}

// NewStorhaug is the stack of the shipped sample (examples/storhaug.conf,
// given as a host path): VIPs 198.51.100.201-203 at home on n1-n3.
func NewStorhaug(sample string) *Storhaug {
	return &Storhaug{Sample: sample, Homes: map[string]string{
		"198.51.100.201": "n1", "198.51.100.202": "n2", "198.51.100.203": "n3",
	}}
}

func (s *Storhaug) Name() string { return "storhaug" }

func (s *Storhaug) VIPs() map[string]string { return s.Homes }

// VIPResource is the Pacemaker resource of a VIP.
func (s *Storhaug) VIPResource(vip string) string {
	return setup.VIPID(netip.MustParseAddr(vip))
}

// Setup installs the sample with a drop-in for the lab's paths in n1, runs
// `storhaug setup` there and waits until every resource runs, each VIP at
// home. Fencing is left as the lab has it.
func (s *Storhaug) Setup(ctx context.Context, l *lab.Lab) error {
	n1 := l.Node("n1")
	sample, err := os.ReadFile(s.Sample)
	if err != nil {
		return err
	}
	if r, err := n1.Sh(ctx, "mkdir -p /etc/sysconfig/storhaug.d"); err != nil {
		return fmt.Errorf("%v %s", err, r.Output())
	}
	if err := n1.WriteFile("/etc/sysconfig/storhaug.conf", sample, 0o644); err != nil {
		return err
	}
	dropIn := fmt.Sprintf("HA_NAME=%q\nHA_MNT_DIR=%q\nHA_NFS_MNT_DIR=\".\"\nHA_SMB_MNT_DIR=\"ctdb\"\nHA_VIP_TICKLE_DIR=%q\nHA_VIP_NIC=\"eth0\"\nHA_GANESHA_PARAMS=\"logfile=/var/log/ganesha/ganesha.log\"\n",
		l.Prefix(), l.SharedDir(), filepath.Join(l.SharedDir(), "tickle-setup")) + s.Extra
	if err := n1.WriteFile("/etc/sysconfig/storhaug.d/50-lab.conf", []byte(dropIn), 0o644); err != nil {
		return err
	}
	if r, err := n1.Run(ctx, "/usr/sbin/storhaug", "setup"); err != nil {
		return fmt.Errorf("storhaug setup: %v\n%s", err, r.Output())
	}
	return Settle(ctx, l, s, 4*time.Minute)
}
