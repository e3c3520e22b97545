package kclient

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/scenario"
)

// TestKernelClientClusterSize: a crash under the kernel clients in a
// 2-node cluster (corosync's two_node quorum: the survivor keeps quorum
// and fences its peer) and in a 5-node one, each a lab of its own set up
// by `storhaug setup` from the shipped sample with the cluster's nodes and
// one VIP per node. The last node, owner of the last VIP, crashes; every
// invariant of the scenario holds (nothing lost, no VIP on two machines,
// one CTDB leader, the cluster settles with the node back).
//
// Each size brings up its own lab (1-2 minutes) next to none other: run it
// on its own (make failover-test), not in the same go test process as the
// package's shared 3-node lab.
func TestKernelClientClusterSize(t *testing.T) {
	for _, n := range []int{2, 5} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) { clusterSize(t, n) })
	}
}

func clusterSize(t *testing.T, size int) {
	kernelLabNeeds(t)
	bin, wl, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 20*time.Minute)
	prefix := labPrefix()
	if len(prefix) > 8 {
		prefix = prefix[:8]
	}
	prefix += fmt.Sprint(size)
	l, err := lab.Up(ctx, lab.Options{
		Prefix: prefix, Nodes: size, Clients: 1, KernelClients: 1, Storhaug: bin,
		Pacemaker: lab.Started, DBus: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Ganesha: lab.Prepared,
		Guard: true, Logf: t.Logf,
	})
	t.Cleanup(func() {
		if l == nil {
			return
		}
		if t.Failed() {
			var b strings.Builder
			l.DumpLogs(&b, 40)
			t.Logf("lab logs:\n%s", b.String())
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if left := l.Leftovers(); len(left) > 0 {
			t.Errorf("left behind: %s", strings.Join(left, ", "))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range l.Guests() {
		if err := copyFile(wl, g.Dir()+"/workload"); err != nil {
			t.Fatal(err)
		}
	}
	var nodes, vips []string
	homes := map[string]string{}
	for i := 1; i <= size; i++ {
		node, vip := fmt.Sprintf("n%d", i), fmt.Sprintf("198.51.100.%d", 200+i)
		nodes = append(nodes, node)
		vips = append(vips, vip+"/24")
		homes[vip] = node
	}
	st := scenario.NewStorhaug(stack.Sample)
	st.Homes = homes
	st.Extra = fmt.Sprintf("HA_CLUSTER_NODES=%q\nHA_VIP_NODES=%q\nHA_VIPS=%q\n",
		strings.Join(nodes, ","), strings.Join(nodes, ","), strings.Join(vips, " "))
	if err := st.Setup(ctx, l); err != nil {
		t.Fatal(err)
	}
	victim := nodes[size-1]
	o, err := scenario.Run(ctx, l, st, scenario.Crash, scenario.Options{Victim: victim, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes: crash of %s (owner of %s; VIP then on %q); detect %s, fence %s; %d ARP rounds, %d CTDB leader rounds:\n%s",
		size, o.Victim, o.VIP, o.Heir, secs(o.DetectS), secs(o.FenceS), o.ARPWindows, o.LeaderSamples,
		scenario.Table(scenario.Aggregate([]*scenario.Outcome{o}, 300)))
	if o.FenceS == nil {
		t.Errorf("%s was not fenced", victim)
	}
	for _, p := range o.Problems() {
		t.Error(p)
	}
	if err := ctx.Err(); err != nil {
		t.Error(err)
	}
}
