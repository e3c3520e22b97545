package scenario

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// fault is how one fault is made and undone.
type fault struct {
	// inject makes the fault and returns its instant.
	inject func(ctx context.Context, r *run) (time.Time, error)
	// heir: the VIP must start on another node.
	heir bool
	// heal undoes it (after the clients recovered); nil: nothing to undo.
	heal func(ctx context.Context, r *run) error
}

var faults = map[string]fault{
	Crash:       {inject: crash, heir: true, heal: recoverVictim},
	LinkCut:     {inject: linkcut, heir: true, heal: restoreAndRecover},
	Partition:   {inject: partition, heir: true, heal: healAndRecover},
	KillCTDBD:   {inject: killer("ctdbd"), heal: cleanup},
	KillSMBD:    {inject: killer("smbd"), heal: cleanup},
	KillGanesha: {inject: killer("ganesha.nfsd"), heal: cleanup},
	KillIPaddr3: {inject: killKeeper, heal: keeperBack},
	Move:        {inject: move, heir: true, heal: unmove},
	Standby:     {inject: standby, heir: true, heal: online},
	Failback:    {inject: crash, heir: true, heal: failback},
}

// crash is a power-off: the cables first (a dead machine sends nothing,
// not even the FINs of its killed processes' sockets), then every process.
func crash(ctx context.Context, r *run) (time.Time, error) {
	at := time.Now()
	if err := r.l.CutLink(r.opts.Victim); err != nil {
		return at, err
	}
	return at, r.l.Crash(r.opts.Victim)
}

func recoverVictim(ctx context.Context, r *run) error {
	if err := r.l.RestoreLink(r.opts.Victim); err != nil {
		return err
	}
	return r.l.Recover(ctx, r.opts.Victim)
}

func linkcut(ctx context.Context, r *run) (time.Time, error) {
	at := time.Now()
	return at, r.l.CutLink(r.opts.Victim)
}

// restoreAndRecover: the cut node is fenced by the others (Recover waits
// for that), then booted with its cables back.
func restoreAndRecover(ctx context.Context, r *run) error {
	if err := r.l.WaitFenced(ctx, r.opts.Victim, r.opts.SettleLimit); err != nil {
		return err
	}
	return recoverVictim(ctx, r)
}

func partition(ctx context.Context, r *run) (time.Time, error) {
	at := time.Now()
	return at, r.l.IsolateCluster(r.opts.Victim)
}

func healAndRecover(ctx context.Context, r *run) error {
	if err := r.l.WaitFenced(ctx, r.opts.Victim, r.opts.SettleLimit); err != nil {
		return err
	}
	if err := r.l.Heal(); err != nil {
		return err
	}
	return r.l.Recover(ctx, r.opts.Victim)
}

// failback: the crashed home node is fenced, then comes back; the VIP's
// move home is the fault measured.
func failback(ctx context.Context, r *run) error {
	if err := r.l.WaitFenced(ctx, r.opts.Victim, r.opts.SettleLimit); err != nil {
		return err
	}
	if err := r.l.RestoreLink(r.opts.Victim); err != nil {
		return err
	}
	r.out.At = time.Now()
	r.logf("failback: %s returns at %s", r.opts.Victim, r.out.At.Format("15:04:05.000"))
	return r.l.Recover(ctx, r.opts.Victim)
}

func killer(name string) func(ctx context.Context, r *run) (time.Time, error) {
	return func(ctx context.Context, r *run) (time.Time, error) {
		at := time.Now()
		_, err := r.l.KillDaemon(r.opts.Victim, name)
		return at, err
	}
}

// keeperPid finds IPaddr3's helper process for the VIP in node n: the
// process whose command line is "IPaddr3 keeper VIP ..." (host pid, pid in
// the node; 0 if none).
func keeperPid(n *lab.Node, vip string) (int, int, error) {
	procs, err := n.Procs()
	if err != nil {
		return 0, 0, err
	}
	want := "IPaddr3\x00keeper\x00" + vip + "\x00"
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.HostPid))
		if err == nil && strings.HasPrefix(string(b), want) {
			return p.HostPid, p.Pid, nil
		}
	}
	return 0, 0, nil
}

// killKeeper kills IPaddr3's helper process for the VIP on the victim.
func killKeeper(ctx context.Context, r *run) (time.Time, error) {
	n := r.l.Node(r.opts.Victim)
	host, pid, err := keeperPid(n, r.vip)
	if err == nil && host == 0 {
		err = fmt.Errorf("no IPaddr3 keeper process for %s on %s", r.vip, n.Name())
	}
	if err != nil {
		return time.Now(), err
	}
	at := time.Now()
	r.logf("kill -9 IPaddr3 keeper of %s on %s (pid %d in the node)", r.vip, n.Name(), pid)
	return at, syscall.Kill(host, syscall.SIGKILL)
}

// keeperBack waits until the VIP's monitor has started a new helper on
// the victim.
func keeperBack(ctx context.Context, r *run) error {
	n := r.l.Node(r.opts.Victim)
	return r.l.WaitFor(ctx, "a new IPaddr3 keeper for "+r.vip+" on "+n.Name(), r.opts.SettleLimit, func() (bool, error) {
		host, _, err := keeperPid(n, r.vip)
		return host != 0, err
	})
}

// cleanup forgets the failed monitor (crm_resource --cleanup), as an
// admin does once the cause is known.
func cleanup(ctx context.Context, r *run) error {
	n := liveNode(r.l)
	if n == nil {
		return fmt.Errorf("no live node")
	}
	if res, err := n.Run(ctx, "crm_resource", "--cleanup"); err != nil {
		return fmt.Errorf("%v %s", err, res.Output())
	}
	return nil
}

func move(ctx context.Context, r *run) (time.Time, error) {
	id, err := vipID(r.stack, r.vip)
	if err != nil {
		return time.Now(), err
	}
	to := ""
	for _, n := range r.l.Nodes() {
		if n.Name() != r.opts.Victim && to == "" {
			to = n.Name()
		}
	}
	at := time.Now()
	return at, crm(ctx, r.l, "resource", "move", id, to)
}

func unmove(ctx context.Context, r *run) error {
	id, err := vipID(r.stack, r.vip)
	if err != nil {
		return err
	}
	return crm(ctx, r.l, "resource", "clear", id)
}

func standby(ctx context.Context, r *run) (time.Time, error) {
	at := time.Now()
	return at, crm(ctx, r.l, "node", "standby", r.opts.Victim)
}

func online(ctx context.Context, r *run) error {
	return crm(ctx, r.l, "node", "online", r.opts.Victim)
}

// crm runs crmsh on a live node.
func crm(ctx context.Context, l *lab.Lab, args ...string) error {
	n := liveNode(l)
	if n == nil {
		return fmt.Errorf("no live node")
	}
	res, err := n.Run(ctx, "crm", args...)
	if err != nil {
		return fmt.Errorf("crm %s: %v %s", strings.Join(args, " "), err, res.Output())
	}
	return nil
}

// liveNode is the first node running Pacemaker's controller.
func liveNode(l *lab.Lab) *lab.Node {
	for _, n := range l.Nodes() {
		if n.Alive() && n.Running("pacemaker-controld") {
			return n
		}
	}
	return nil
}
