package main

// The demo's crash under kernel clients: the guest's mounts, the
// workloads, the live progress, the data check and the timeline.

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/storhaug/storhaug/test/scenario"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/timeline"
)

func guestKernel(ctx context.Context, g *lab.Guest) string {
	r, err := g.Run(ctx, "uname", "-r")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(r.Stdout)
}

// workloadReport is test/workload check's output.
type workloadReport struct {
	Proto    string   `json:"proto"`
	Acked    int      `json:"acked"`
	Lost     int      `json:"lost"`
	Corrupt  int      `json:"corrupt"`
	OutageS  float64  `json:"outage_s"`
	NewOpenS float64  `json:"newopen_s"`
	Locks    string   `json:"locks"`
	Errors   int      `json:"errors"`
	Stalls   int      `json:"stalls"`
	MaxOpS   float64  `json:"max_op_s"`
	Problems []string `json:"problems"`
}

// says is how the live progress names a cluster event.
func says(e timeline.Event) string {
	switch e.Kind {
	case timeline.TokenLost:
		return "corosync: token lost, forming a new membership"
	case timeline.Lost:
		return "Pacemaker: " + demoVictim + " seen down (the controller's \"state is now lost\")"
	case timeline.Fenced:
		return "fencer: " + demoVictim + " fenced (powered off by " + lab.FenceAgent + ")"
	case timeline.VIPStarted:
		return "Pacemaker: VIP " + demoVIP + " started on " + e.Node
	case timeline.Tickled:
		return "IPaddr3: the clients' TCP connections tickled"
	case timeline.GraceStart:
		return "NFS-Ganesha on " + e.Node + " in grace"
	case timeline.SMNotify:
		return "ganesha_trigger: SM_NOTIFY sent to the NFSv3 clients"
	case timeline.CTDBPeerDead:
		return "CTDB: " + demoVictim + " dead (dropped after the fencing, or by its keepalives)"
	case timeline.CTDBRecovering:
		return "CTDB: recovery started"
	case timeline.CTDBRecovered:
		return "CTDB: recovered"
	case timeline.GraceLifted:
		return "NFS-Ganesha on " + e.Node + ": grace lifted"
	case timeline.MonitorFailed:
		return "Pacemaker: a monitor failed"
	}
	return e.Kind
}

// crashUnderKernelClients mounts every protocol through the victim's VIP in
// the guest, runs the workloads, powers the victim off and tells the story.
func crashUnderKernelClients(ctx context.Context, l *lab.Lab, svg string) error {
	g := l.Guest(1)
	ms := scenario.Mounts(demoVIP)
	protos := make([]string, len(ms))
	for i, m := range ms {
		protos[i] = m.Proto
	}
	stamp := time.Now().Format("150405")
	wdir := func(base string, m scenario.Mount) string {
		return fmt.Sprintf("%s/%s/demo-%s-%s", base, m.Proto, m.Proto, stamp)
	}

	section("kernel client %s mounts through %s (%s's VIP) and runs test/workload on each mount", g.Hostname(), demoVIP, demoVictim)
	for _, m := range ms {
		d, err := scenario.MountIn(ctx, g, m.FSType, m.Source, m.Opts, "/tmp/m/"+m.Proto)
		if err != nil {
			return err
		}
		fmt.Printf("  %-7s mount -t %s -o %s %s (%.2fs)\n", m.Proto, m.FSType, m.Opts, m.Source, d.Seconds())
	}
	defer func() {
		// Hard mounts of a VIP that moves on: unmount before teardown.
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, base := range []string{"/tmp/m/", "/tmp/f/"} {
			for _, m := range ms {
				g.Run(uctx, "umount", "-f", "-l", base+m.Proto)
			}
		}
	}()
	fmt.Println("  each workload: 64-byte records (sequence number, CRC-32C) written and fsync'd every 50 ms, each acknowledgment")
	fmt.Println("  logged; a POSIX lock held all along; a new file created and locked every second")
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	type ended struct {
		r   lab.Result
		err error
	}
	results := map[string]chan ended{}
	for _, m := range ms {
		ch := make(chan ended, 1)
		results[m.Proto] = ch
		go func() {
			r, err := g.Run(wctx, lab.GuestLabDir+"/workload", "run", "-dir", wdir("/tmp/m", m),
				"-log", lab.GuestLabDir+"/"+m.Proto+".log", "-stop", "/tmp/stop")
			ch <- ended{r, err}
		}()
	}
	for _, m := range ms {
		err := l.WaitFor(ctx, m.Proto+" workload running", time.Minute, func() (bool, error) {
			acks, opens := progress(g, m.Proto)
			if acks >= 20 && opens >= 2 {
				return true, nil
			}
			return false, fmt.Errorf("%d acknowledgments, %d new opens", acks, opens)
		})
		if err != nil {
			return err
		}
	}
	fmt.Println("  all four workloads running")

	section("powering %s off (its links cut, every process of the node killed) under the workloads", demoVictim)
	fault := time.Now()
	// The link first: a machine that loses power sends nothing more, not
	// even the FINs and RSTs a kernel sends for the sockets of killed
	// processes.
	if err := l.CutLink(demoVictim); err != nil {
		return err
	}
	if err := l.Crash(demoVictim); err != nil {
		return err
	}
	fmt.Printf("  %+7.2fs  %s powered off (at %s)\n", 0.0, demoVictim, fault.Format("15:04:05.000"))
	tl, err := watchFailover(ctx, l, g, protos, fault)
	if err != nil {
		return err
	}

	section("data check: the workloads stop; every acknowledged record is read back through a fresh mount")
	probes := map[string]string{}
	for _, m := range ms {
		if _, err := scenario.MountIn(ctx, g, m.FSType, m.Source, m.Fresh, "/tmp/f/"+m.Proto); err != nil {
			return fmt.Errorf("fresh mount: %v", err)
		}
		// While the workload still holds its lock: a conflicting lock
		// through the fresh mount must be denied.
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := g.Run(pctx, lab.GuestLabDir+"/workload", "probelock", "-file", wdir("/tmp/f", m)+"/lock")
		cancel()
		if err != nil {
			return fmt.Errorf("%s: lock probe: %v %s", m.Proto, err, r.Output())
		}
		probes[m.Proto] = strings.TrimSpace(r.Stdout)
	}
	if r, err := g.Run(ctx, "touch", "/tmp/stop"); err != nil {
		return fmt.Errorf("stop the workloads: %v %s", err, r.Output())
	}
	for _, m := range ms {
		select {
		case e := <-results[m.Proto]:
			if e.err != nil {
				return fmt.Errorf("%s workload: %v %s", m.Proto, e.err, e.r.Output())
			}
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("%s workload did not stop within 2 minutes", m.Proto)
		}
	}
	var problems []string
	fmt.Printf("  %-7s %6s %5s %8s %9s %10s  %-14s %s\n", "proto", "acked", "lost", "corrupt", "outage_s", "newopen_s", "held lock", "errors seen by the application")
	for _, m := range ms {
		r, err := g.Run(ctx, lab.GuestLabDir+"/workload", "check", "-dir", wdir("/tmp/f", m),
			"-log", lab.GuestLabDir+"/"+m.Proto+".log", "-proto", m.Proto,
			"-fault", fmt.Sprint(fault.UnixNano()), "-probe", probes[m.Proto])
		if err != nil {
			return fmt.Errorf("%s: check: %v %s", m.Proto, err, r.Output())
		}
		var rep workloadReport
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			return fmt.Errorf("%s: check output %q: %v", m.Proto, r.Stdout, err)
		}
		seen := fmt.Sprint(rep.Errors)
		if rep.Errors > 0 && len(rep.Problems) > 0 {
			seen += " (" + short(rep.Problems[0], 60) + ")"
		}
		fmt.Printf("  %-7s %6d %5d %8d %9.2f %10.2f  %-14s %s\n", rep.Proto, rep.Acked, rep.Lost, rep.Corrupt, rep.OutageS, rep.NewOpenS, rep.Locks, seen)
		if rep.Lost != 0 || rep.Corrupt != 0 || rep.Acked == 0 {
			problems = append(problems, fmt.Sprintf("%s: %d acknowledged, %d lost, %d corrupt", m.Proto, rep.Acked, rep.Lost, rep.Corrupt))
		}
		if rep.Locks != "kept" && rep.Locks != "reported-lost" {
			problems = append(problems, fmt.Sprintf("%s: lock %s", m.Proto, rep.Locks))
		}
	}
	fmt.Println("  held lock: kept = a conflicting lock through the fresh mount was denied; reported-lost = the application got an error")

	section("where the time went (from the nodes' logs and the workloads' logs)")
	if t2, err := timeline.Collect(l, g, protos, fault, demoVictim); err == nil {
		tl = t2
	}
	fmt.Print(tl.Breakdown())
	if err := writeSVG(svg, tl); err != nil {
		fmt.Println("  timeline picture:", err)
	} else {
		fmt.Printf("  timeline picture: %s\n", svg)
	}
	if len(problems) > 0 {
		return fmt.Errorf("data check: %s", strings.Join(problems, "; "))
	}
	return nil
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func writeSVG(path string, tl *timeline.Timeline) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := tl.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progress counts a workload's acknowledgments and new opens, from its log
// in the guest's lab directory.
func progress(g *lab.Guest, proto string) (acks, opens int) {
	b, _ := os.ReadFile(filepath.Join(g.Dir(), proto+".log"))
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, `{"ev":"ack"`):
			acks++
		case strings.HasPrefix(line, `{"ev":"newopen"`):
			opens++
		}
	}
	return
}

// watchFailover prints, as they appear in the logs, the cluster's steps
// and each protocol's stall and return, until every protocol has done I/O
// and a new open again and NFS-Ganesha's grace and CTDB's recovery are
// over (at most 3 minutes). Each line carries the time of the event itself
// (from its log), not when it was seen.
func watchFailover(ctx context.Context, l *lab.Lab, g *lab.Guest, protos []string, fault time.Time) (*timeline.Timeline, error) {
	type line struct {
		at   time.Time
		text string
	}
	var pending []line
	printed := map[string]bool{}
	say := func(key string, at time.Time, format string, args ...any) {
		if printed[key] {
			return
		}
		printed[key] = true
		pending = append(pending, line{at, fmt.Sprintf(format, args...)})
	}
	// What one look at the logs found, in the order it happened.
	flush := func() {
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
		for _, p := range pending {
			fmt.Printf("  %+7.2fs  %s\n", p.at.Sub(fault).Seconds(), p.text)
		}
		pending = pending[:0]
	}
	limit := time.Now().Add(3 * time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var tl *timeline.Timeline
	for {
		select {
		case <-ctx.Done():
			return tl, ctx.Err()
		case <-tick.C:
		}
		t, err := timeline.Collect(l, g, protos, fault, demoVictim)
		if err != nil {
			return tl, err
		}
		tl = t
		var graceAt time.Time
		for _, e := range t.Events {
			switch e.Kind {
			case timeline.Fault:
				continue
			case timeline.GraceStart:
				if graceAt.IsZero() {
					graceAt = e.At
				}
			case timeline.GraceLifted:
				if graceAt.IsZero() || e.At.Before(graceAt.Truncate(time.Second)) {
					continue
				}
			}
			coarse := ""
			if timeline.Coarse(e) {
				coarse = " (stamped in whole seconds: up to 1 s later)"
			}
			say(e.Kind, e.At, "%-8s %s%s", "cluster", says(e), coarse)
		}
		done := true
		now := time.Now()
		for _, p := range t.Protos {
			switch {
			case !p.Back.IsZero():
				stalled := 0.0
				for _, s := range p.Spans {
					if !s.OK && !s.To.Before(fault) {
						stalled += s.To.Sub(s.From).Seconds()
					}
				}
				say(p.Name+"/back", p.Back, "%-8s I/O on the open file back (stalled %.2fs)", p.Name, stalled)
			case now.Sub(fault) > timeline.StallAfter:
				last := math.NaN()
				for _, s := range p.Spans {
					if s.OK && !s.To.After(fault) {
						last = s.To.Sub(fault).Seconds()
					}
				}
				say(p.Name+"/stalled", fault.Add(timeline.StallAfter), "%-8s stalled (last acknowledgment at %+.2fs)", p.Name, last)
			}
			if !p.NewOpen.IsZero() {
				say(p.Name+"/open", p.NewOpen, "%-8s new file opened and locked", p.Name)
			}
			done = done && !p.Back.IsZero() && !p.NewOpen.IsZero()
		}
		flush()
		_, grace := t.First(timeline.GraceStart)
		lifted := printed[timeline.GraceLifted]
		_, recovering := t.First(timeline.CTDBRecovering)
		_, recovered := t.First(timeline.CTDBRecovered)
		// NFS clients: ganesha_trigger puts the new owner in grace after
		// the VIP starts, which may come after the clients are back.
		nfs := false
		for _, p := range protos {
			nfs = nfs || strings.HasPrefix(p, "nfs")
		}
		if done && (grace || !nfs) && (!grace || lifted) && (!recovering || recovered) {
			return tl, nil
		}
		if time.Now().After(limit) {
			fmt.Println("  (3 minutes after the crash: not everything recovered; going on)")
			return tl, nil
		}
	}
}
