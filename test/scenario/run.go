package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/timeline"
)

// Mount is how a kernel client mounts one protocol through a VIP.
type Mount struct {
	Proto  string // nfs4.2, nfs4.1, nfs3, smb3
	FSType string
	Source string
	Opts   string // the application's mount
	Fresh  string // a second, independent mount for the checks
}

// Mounts are the four mounts through vip, with the options an admin uses
// for HA: hard (never an error to the application for a server that is
// away), NFS over TCP with a short retransmit timeout; SMB 3.1.1 with
// hard. The fresh mounts share no cache (NFS) or connection (SMB) with the
// application's.
func Mounts(vip string) []Mount {
	nfs := vip + ":" + lab.ExportPseudo
	smb := "//" + vip + "/" + lab.ShareName
	return []Mount{
		{"nfs4.2", "nfs", nfs, "vers=4.2,hard,timeo=10", "vers=4.2,hard,timeo=10,nosharecache"},
		{"nfs4.1", "nfs", nfs, "vers=4.1,hard,timeo=10", "vers=4.1,hard,timeo=10,nosharecache"},
		{"nfs3", "nfs", nfs, "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp", "vers=3,hard,timeo=10,proto=tcp,mountproto=tcp,nosharecache"},
		{"smb3", "cifs", smb, "vers=3.1.1,guest,hard", "vers=3.1.1,guest,hard,nosharesock"},
	}
}

// MountIn mounts source on dir in the guest (a tmpfs of the guest) and
// returns how long mount(8) took. An SMB mount is retried while smbd
// refuses connections (CTDB starts it once healthy), up to 90 s.
func MountIn(ctx context.Context, g *lab.Guest, fstype, source, opts, dir string) (time.Duration, error) {
	if r, err := g.Run(ctx, "mkdir", "-p", dir); err != nil {
		return 0, fmt.Errorf("mkdir %s: %v %s", dir, err, r.Output())
	}
	t0 := time.Now()
	try := func() error {
		r, err := g.Run(ctx, "mount", "-t", fstype, "-o", opts, source, dir)
		if err != nil {
			return fmt.Errorf("mount -t %s -o %s %s %s: %v %s", fstype, opts, source, dir, err, r.Output())
		}
		return nil
	}
	if fstype != "cifs" {
		err := try()
		return time.Since(t0), err
	}
	var hard error
	err := lab.WaitFor(ctx, "smbd to accept "+source, 90*time.Second, func() (bool, error) {
		err := try()
		if err != nil && !strings.Contains(err.Error(), "could not connect") {
			hard = err
			return true, nil
		}
		return err == nil, err
	})
	if hard != nil {
		return 0, hard
	}
	return time.Since(t0), err
}

// report is test/workload's check output.
type report struct {
	Proto    string   `json:"proto"`
	Acked    int      `json:"acked"`
	Lost     int      `json:"lost"`
	Corrupt  int      `json:"corrupt"`
	OutageS  float64  `json:"outage_s"`
	NewOpenS float64  `json:"newopen_s"`
	Locks    string   `json:"locks"`
	Errors   int      `json:"errors"`
	Stalls   int      `json:"stalls"`
	Problems []string `json:"problems"`
}

// logEvent is the part of a workload log line the scenario reads.
type logEvent struct {
	Ev    string `json:"ev"`
	Start int64  `json:"start"`
}

// progress counts a workload's acknowledgments and new opens begun at or
// after since (Unix ns), from its log.
func progress(path string, since int64) (acks, opens int) {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		var e logEvent
		if json.Unmarshal([]byte(line), &e) != nil || e.Start < since {
			continue
		}
		switch e.Ev {
		case "ack":
			acks++
		case "newopen":
			opens++
		}
	}
	return
}

type run struct {
	l     *lab.Lab
	stack Stack
	fault string
	opts  Options
	g     *lab.Guest
	id    string
	vip   string
	out   *Outcome
}

func (r *run) logf(format string, args ...any) { r.opts.Logf(format, args...) }

// paths of one run: the application's and the fresh mount, the workload
// directory on each, the log (guest path and host path), the stop file.
func (r *run) mnt(m Mount) string      { return "/tmp/m/" + r.id + "/" + m.Proto }
func (r *run) fresh(m Mount) string    { return "/tmp/f/" + r.id + "/" + m.Proto }
func (r *run) probeDir(m Mount) string { return "/tmp/p/" + r.id + "/" + m.Proto }
func (r *run) wdir(base string, m Mount) string {
	return base + "/kc-" + r.id + "-" + m.Proto
}
func (r *run) guestLog(m Mount) string { return lab.GuestLabDir + "/" + r.id + "-" + m.Proto + ".log" }
func (r *run) hostLog(m Mount) string  { return filepath.Join(r.g.Dir(), r.id+"-"+m.Proto+".log") }
func (r *run) stopFile() string        { return "/tmp/stop-" + r.id }

func (r *run) run(ctx context.Context) (*Outcome, error) {
	l, g := r.l, r.g
	victim := r.opts.Victim
	for addr, home := range r.stack.VIPs() {
		if home == victim {
			r.vip = addr
		}
	}
	if r.vip == "" {
		return nil, fmt.Errorf("scenario: stack %s has no VIP at home on %s", r.stack.Name(), victim)
	}
	r.id = strings.ReplaceAll(r.fault, "-", "") + time.Now().Format("150405")
	r.out = &Outcome{Stack: r.stack.Name(), Fault: r.fault, Victim: victim, VIP: r.vip}
	if err := r.settle(ctx); err != nil {
		return nil, fmt.Errorf("scenario: before the fault: %w", err)
	}
	if err := r.quiesce(ctx); err != nil {
		return nil, fmt.Errorf("scenario: before the fault: %w", err)
	}

	mon, err := startMonitors(ctx, l, r.stack, r.logf)
	if err != nil {
		return nil, err
	}
	defer mon.stop()

	ms := LabMounts(l, r.stack, r.vip)
	defer r.unmountAll(ms)
	for _, m := range ms {
		d, err := MountIn(ctx, g, m.FSType, m.Source, m.Opts, r.mnt(m))
		if err != nil {
			return nil, err
		}
		r.logf("%s mounted through %s in %.2fs", m.Proto, r.vip, d.Seconds())
	}

	// The workloads, one per mount, until the stop file appears.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	type ended struct {
		res lab.Result
		err error
	}
	ends := map[string]chan ended{}
	for _, m := range ms {
		ch := make(chan ended, 1)
		ends[m.Proto] = ch
		go func() {
			res, err := g.Run(wctx, r.opts.Workload, "run", "-dir", r.wdir(r.mnt(m), m),
				"-log", r.guestLog(m), "-stop", r.stopFile())
			ch <- ended{res, err}
		}()
	}
	stopped := false
	stopWorkloads := func() {
		if stopped {
			return
		}
		stopped = true
		if res, err := g.Run(ctx, "touch", r.stopFile()); err != nil {
			r.logf("stop the workloads: %v %s", err, res.Output())
		}
	}
	defer stopWorkloads()
	for _, m := range ms {
		// Up to the recover limit: a stack that has just come up may hold
		// new opens in its grace period (ganesha's default 90 s).
		err := l.WaitFor(ctx, m.Proto+" workload running", r.opts.RecoverLimit, func() (bool, error) {
			acks, opens := progress(r.hostLog(m), 0)
			if acks >= 20 && opens >= 2 {
				return true, nil
			}
			return false, fmt.Errorf("%d acks, %d new opens", acks, opens)
		})
		if err != nil {
			return nil, err
		}
	}

	logs := markLogs(l)
	f := faults[r.fault]
	at, err := f.inject(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("scenario: %s: %w", r.fault, err)
	}
	r.out.At = at
	r.logf("%s of %s at %s", r.fault, victim, at.Format("15:04:05.000"))
	if f.heir {
		heir, err := r.waitVIPMoved(ctx, victim)
		if err != nil {
			return nil, err
		}
		r.out.Heir = heir
		r.logf("%s started on %s %.1fs after the fault", r.vip, heir, time.Since(at).Seconds())
	}
	if r.fault == Move || r.fault == Standby {
		// A graceful move serves the clients until the VIP's stop: the
		// outage is measured from when the cluster began to stop it (I/O
		// begun between the command and the stop proves nothing).
		r.fromStop(logs)
	}
	failed := r.waitProgress(ctx, ms, r.out.At)
	r.logf("clients recovered (or gave up) %.1fs after the fault", time.Since(at).Seconds())
	// The fault's verdict on the locks: a conflicting lock through fresh
	// mounts once the clients have recovered, before the heal.
	probes, probeErr := r.probeLocks(ctx, ms, r.probeDir)
	if f.heal != nil {
		if err := f.heal(ctx, r); err != nil {
			return nil, fmt.Errorf("scenario: heal %s: %w", r.fault, err)
		}
	}
	t0 := time.Now()
	if err := r.settle(ctx); err != nil {
		return nil, fmt.Errorf("scenario: after %s: %w", r.fault, err)
	}
	r.logf("healed; the cluster settled in %.1fs", time.Since(t0).Seconds())
	if r.fault == Failback {
		// The fault measured is the move home: from when the cluster
		// began to stop the VIP where it had failed over to (else from
		// the node's return).
		r.fromStop(logs)
		failed = r.waitProgress(ctx, ms, r.out.At)
	}
	// The fault as the logs tell it (the workload logs under the
	// protocols' names).
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = r.id + "-" + m.Proto
	}
	tl, err := timeline.Collect(l, g, names, r.out.At, victim)
	if err != nil {
		r.logf("timeline: %v", err)
	}
	if tl != nil {
		for i := range tl.Protos {
			tl.Protos[i].Name = ms[i].Proto
		}
		r.out.Timeline = tl
	}
	r.out.DetectS, r.out.FenceS = detectFence(tl, r.fault)

	// The cluster whole again: the locks probed again through other fresh
	// mounts, which the checker then reads every record through.
	healed, healErr := r.probeLocks(ctx, ms, r.fresh)
	if r.fault == Failback {
		probes, probeErr = healed, healErr
	}
	stopWorkloads()
	for _, m := range ms {
		select {
		case e := <-ends[m.Proto]:
			if e.err != nil {
				probeErr[m.Proto] += fmt.Sprintf(" workload: %v %s", e.err, e.res.Output())
			}
		case <-time.After(2 * time.Minute):
			probeErr[m.Proto] += " workload did not stop within 2 minutes"
		}
	}
	for _, m := range ms {
		res := Result{Proto: m.Proto, Locks: "unknown", OutageS: -1, NewOpenS: -1, Failed: failed[m.Proto] != ""}
		if failed[m.Proto] != "" {
			res.Problems = append(res.Problems, failed[m.Proto])
		}
		for _, e := range []string{probeErr[m.Proto], healErr[m.Proto]} {
			if e != "" {
				res.Failed = true
				res.Problems = append(res.Problems, strings.TrimSpace(e))
			}
		}
		if _, ok := probes[m.Proto]; ok {
			// Bounded: a check stuck on a hard mount fails this run
			// instead of hanging the bench.
			cctx, cancel := context.WithTimeout(ctx, r.opts.RecoverLimit+time.Minute)
			out, err := g.Run(cctx, r.opts.Workload, "check", "-dir", r.wdir(r.fresh(m), m),
				"-log", r.guestLog(m), "-proto", m.Proto,
				"-fault", fmt.Sprint(r.out.At.UnixNano()), "-probe", probes[m.Proto])
			cancel()
			var rep report
			if err == nil {
				err = json.Unmarshal([]byte(out.Stdout), &rep)
			}
			if err != nil {
				res.Failed = true
				res.Problems = append(res.Problems, fmt.Sprintf("check: %v %s", err, out.Output()))
			} else {
				res.OutageS, res.NewOpenS = rep.OutageS, rep.NewOpenS
				res.Acked, res.Lost, res.Corrupt = rep.Acked, rep.Lost, rep.Corrupt
				res.Locks, res.Errors, res.Stalls = rep.Locks, rep.Errors, rep.Stalls
				res.Problems = append(res.Problems, rep.Problems...)
				if res.OutageS < 0 || res.NewOpenS < 0 {
					res.Failed = true
				}
			}
		}
		res.LocksHealed = res.Locks
		if res.Locks != "reported-lost" {
			res.LocksHealed = lockOutcome(healed[m.Proto])
		}
		r.out.Results = append(r.out.Results, res)
	}
	r.out.Violations, r.out.ARPWindows, r.out.LeaderSamples = mon.stop()
	r.out.Violations = append(r.out.Violations, falseFailovers(tl, r.fault)...)
	return r.out, nil
}

// fromStop moves the fault's instant to when the cluster initiated the
// VIP's stop (the first one after the instant so far), if the logs say.
func (r *run) fromStop(logs *logMark) {
	id, err := vipID(r.stack, r.vip)
	if err != nil {
		r.logf("%s: no VIP resource for %s (%v): measured from the %s command", r.fault, r.vip, err, r.fault)
		return
	}
	t, ok := stopStarted(logs, id, r.out.At)
	if !ok {
		r.logf("%s: no stop of %s in the logs: measured from the %s command", r.fault, id, r.fault)
		return
	}
	r.logf("%s: %s's stop initiated at %s", r.fault, id, t.Format("15:04:05.000"))
	r.out.At = t
}

// probeLocks mounts every protocol afresh on dir(m) and tries, from
// another process, a lock conflicting with the workload's: "denied" (the
// lock is held) or "granted"; or why it could not.
func (r *run) probeLocks(ctx context.Context, ms []Mount, dir func(Mount) string) (probes, errs map[string]string) {
	t0 := time.Now()
	probes, errs = map[string]string{}, map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe, err := r.probeLock(ctx, m, dir(m))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[m.Proto] = err.Error()
				return
			}
			probes[m.Proto] = probe
		}()
	}
	wg.Wait()
	r.logf("locks probed through fresh mounts in %.1fs: %v %v", time.Since(t0).Seconds(), probes, errs)
	return probes, errs
}

func (r *run) probeLock(ctx context.Context, m Mount, dir string) (string, error) {
	if _, err := MountIn(ctx, r.g, m.FSType, m.Source, m.Fresh, dir); err != nil {
		return "", fmt.Errorf("fresh mount: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.opts.RecoverLimit) // a server in grace (90 s as ganesha ships) refuses locks until it ends
	defer cancel()
	res, err := r.g.Run(pctx, r.opts.Workload, "probelock", "-file", r.wdir(dir, m)+"/lock")
	if err != nil {
		return "", fmt.Errorf("lock probe: %v %s", err, res.Output())
	}
	return strings.TrimSpace(res.Stdout), nil
}

// lockOutcome is a probe's verdict for a workload that was not told it
// lost its lock.
func lockOutcome(probe string) string {
	switch probe {
	case "denied":
		return "kept"
	case "granted":
		return "silently-lost"
	}
	return "unknown"
}

// waitProgress waits until every workload has acknowledged a record and
// made a new open + lock begun after at; it returns, per protocol, why one
// did not within the recover limit.
func (r *run) waitProgress(ctx context.Context, ms []Mount, at time.Time) map[string]string {
	var mu sync.Mutex
	failed := map[string]string{}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := lab.WaitFor(ctx, m.Proto+" recovered", r.opts.RecoverLimit, func() (bool, error) {
				acks, opens := progress(r.hostLog(m), at.UnixNano())
				if acks > 0 && opens > 0 {
					return true, nil
				}
				return false, fmt.Errorf("%d acks, %d new opens since the fault", acks, opens)
			})
			if err != nil {
				mu.Lock()
				failed[m.Proto] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// waitVIPMoved waits until the VIP runs on exactly one node other than
// from, and returns it.
func (r *run) waitVIPMoved(ctx context.Context, from string) (string, error) {
	var heir string
	err := r.l.WaitFor(ctx, r.vip+" started away from "+from, r.opts.RecoverLimit, func() (bool, error) {
		on, err := vipNodes(ctx, r.l, r.vip)
		if err != nil {
			return false, err
		}
		if len(on) != 1 || on[0] == from {
			return false, fmt.Errorf("on %v", on)
		}
		heir = on[0]
		return true, nil
	})
	return heir, err
}

// unmountAll unmounts what the run mounted (lazily: a mount whose server
// never came back must not hang the next run).
func (r *run) unmountAll(ms []Mount) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range ms {
		for _, dir := range []string{r.mnt(m), r.probeDir(m), r.fresh(m)} {
			res, err := r.g.Run(ctx, "umount", "-l", dir)
			var ee *lab.ExitError
			if err != nil && !(errors.As(err, &ee) && strings.Contains(res.Output(), "not mounted")) &&
				!strings.Contains(res.Output(), "no mount point") {
				r.logf("umount %s: %v", dir, err)
			}
		}
	}
}
