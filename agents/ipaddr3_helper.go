package agents

// IPaddr3's helper: the process start leaves running to send the later
// announcement rounds (and, through the tickle hooks, the later tickle
// rounds, run by a tickle.Keeper). It is the storhaug binary re-executed
// as "IPaddr3 keeper IP INSTANCE" with the agent's environment, in a session of its own (so
// Pacemaker's kill of a timed-out operation's process group does not reach
// it), its pid in a pidfile in the state directory. Stop ends it after
// checking that the pid is still that helper.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/vip"
)

// vipHelperAction is the helper's hidden action: its name in the
// command line, which identifies it (and so stays what earlier releases
// started).
const vipHelperAction = "keeper"

// Environment the helper is started with, besides the agent's own.
const (
	envHelperRounds = "STORHAUG_IPADDR3_ROUNDS" // announcement rounds left
	envHelperNext   = "STORHAUG_IPADDR3_NEXT"   // when the next is due (Unix ns)
	envHelperLink   = "STORHAUG_IPADDR3_LINK"   // the interface the address is on
	envHelperPrefix = "STORHAUG_IPADDR3_PREFIX" // its prefix length
)

// vipHelperPidfile is the helper's pidfile: per resource instance (or per
// address and namespace when run by hand).
func vipHelperPidfile(v *vipReq) string {
	key := v.r.Instance
	if key == "" {
		key = v.spec.Addr.String()
		if v.ns != "" {
			key += "@" + v.ns
		}
	}
	return v.r.StateFile("IPaddr3", key, ".pid")
}

// legacyVIPHelperPidfile is where releases before the one naming of state
// files kept the pidfile: a helper started by one of them is still found
// (and stopped) after an upgrade.
func legacyVIPHelperPidfile(v *vipReq) string {
	return strings.Replace(vipHelperPidfile(v), "storhaug-IPaddr3-", "IPaddr3-", 1)
}

// vipHelperArgs is the command line a helper of v runs with.
func vipHelperArgs(v *vipReq) []string {
	return []string{"IPaddr3", vipHelperAction, v.spec.Addr.String(), v.r.Instance}
}

// vipHelperPid returns the pid of v's running helper, or 0.
func vipHelperPid(v *vipReq) int {
	for _, f := range []string{vipHelperPidfile(v), legacyVIPHelperPidfile(v)} {
		pid, err := proc.ReadPidfile(f)
		if err == nil && proc.Runs(pid, vipHelperArgs(v)) {
			return pid
		}
	}
	return 0
}

func vipHelperRunning(v *vipReq) bool { return vipHelperPid(v) != 0 }

// vipHelperNice is the helper's scheduling priority (nice value): its
// start-up (a Go process's) must not slow down what matters in a
// takeover: the clients' reconnections, the services moving in, the
// first monitor. Its work is a few packets a second and one list.
const vipHelperNice = 10

// spawnVIPHelper starts the helper for target t with rounds announcement
// rounds left, the next due at next.
func spawnVIPHelper(v *vipReq, t vip.Target, rounds int, next time.Time) error {
	pidfile := vipHelperPidfile(v)
	if err := os.MkdirAll(filepath.Dir(pidfile), 0o755); err != nil {
		return fmt.Errorf("starting the helper process: %w", err)
	}
	// The helper logs to syslog.
	pid, err := proc.Spawn(proc.Helper{
		Args: vipHelperArgs(v),
		Env: append(os.Environ(),
			envHelperRounds+"="+strconv.Itoa(rounds),
			envHelperNext+"="+strconv.FormatInt(next.UnixNano(), 10),
			envHelperLink+"="+t.Link,
			envHelperPrefix+"="+strconv.Itoa(t.Prefix),
		),
		Nice: vipHelperNice,
	})
	if err != nil {
		return fmt.Errorf("starting the helper process: %w", err)
	}
	if err := atomicfile.Write(pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		syscall.Kill(pid, syscall.SIGTERM)
		return fmt.Errorf("helper process pidfile: %w", err)
	}
	v.r.Log.Debugf("helper process %d started (%d announcement rounds left)", pid, rounds)
	return nil
}

// stopVIPHelper ends v's helper, if one runs: SIGTERM, then SIGKILL if it is
// still there when the stop's deadline comes close.
func stopVIPHelper(v *vipReq) error {
	pidfile := vipHelperPidfile(v)
	if pid := vipHelperPid(v); pid != 0 {
		args := vipHelperArgs(v)
		if _, err := proc.Stop(v.r.Context(), pid, func(p int) bool { return proc.Runs(p, args) }); err != nil {
			return fmt.Errorf("ending helper process %d: %w", pid, err)
		}
	}
	os.Remove(legacyVIPHelperPidfile(v))
	if err := os.Remove(pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ipaddr3Helper is the helper process: the announcement rounds left, then
// the tickle keeper when tickles are wanted, until SIGTERM.
func ipaddr3Helper(r *ocf.Request) error {
	// Not r.Context(): that ends at the start operation's deadline.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	signal.Ignore(syscall.SIGHUP)
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	defer func() {
		// Leave the pidfile to a newer helper.
		if b, err := os.ReadFile(vipHelperPidfile(v)); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(vipHelperPidfile(v))
		}
	}()
	h, err := v.open()
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	defer h.Close()
	spec := v.spec
	if l := r.Getenv(envHelperLink); l != "" {
		spec.Link = l
	}
	if p, err := strconv.Atoi(r.Getenv(envHelperPrefix)); err == nil && p > 0 {
		spec.Prefix = p
	}
	t, err := h.Resolve(spec)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	// The tickle side runs alongside the announcements, not after them: its
	// later takeover rounds are due at ~1.1 and ~2.2 s and the connection list
	// must be fresh from the start.
	var tickling sync.WaitGroup
	if tickleWanted(r) {
		tickling.Add(1)
		go func() {
			defer tickling.Done()
			tickleKeep(ctx, r, v.target(t))
		}()
	}
	rounds, _ := strconv.Atoi(r.Getenv(envHelperRounds))
	if rounds > 0 {
		var next time.Time
		if ns, err := strconv.ParseInt(r.Getenv(envHelperNext), 10, 64); err == nil && ns > 0 {
			next = time.Unix(0, ns)
		}
		sent, err := h.Announce(ctx, t, rounds, v.interval, next, func(round int, err error) {
			r.Log.Errorf("announcing %s on %s, round %d: %v", t.Addr, t.Link, v.count-rounds+round, err)
		})
		if err != nil {
			r.Log.Errorf("announcing %s on %s: %v", t.Addr, t.Link, err)
		} else {
			r.Log.Debugf("sent %d later announcement rounds for %s", sent, t.Addr)
		}
	}
	tickling.Wait()
	return nil
}
