package agents

// IPaddr3's keeper: the helper process start leaves running to send the
// later announcement rounds (and, through the tickle hooks, the later
// tickle rounds). It is the storhaug binary re-executed as "IPaddr3 keeper
// IP INSTANCE" with the agent's environment, in a session of its own (so
// Pacemaker's kill of a timed-out operation's process group does not reach
// it), its pid in a pidfile in the state directory. Stop ends it after
// checking that the pid is still that keeper.

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

const keeperAction = "keeper"

// Environment the keeper is started with, besides the agent's own.
const (
	envKeeperRounds = "STORHAUG_IPADDR3_ROUNDS" // announcement rounds left
	envKeeperNext   = "STORHAUG_IPADDR3_NEXT"   // when the next is due (Unix ns)
	envKeeperLink   = "STORHAUG_IPADDR3_LINK"   // the interface the address is on
	envKeeperPrefix = "STORHAUG_IPADDR3_PREFIX" // its prefix length
)

// keeperPidfile is the keeper's pidfile: per resource instance (or per
// address and namespace when run by hand).
func keeperPidfile(v *vipReq) string {
	key := v.r.Instance
	if key == "" {
		key = v.spec.Addr.String()
		if v.ns != "" {
			key += "@" + v.ns
		}
	}
	return v.r.StateFile("IPaddr3", key, ".pid")
}

// legacyKeeperPidfile is where releases before the one naming of state
// files kept the pidfile: a keeper started by one of them is still found
// (and stopped) after an upgrade.
func legacyKeeperPidfile(v *vipReq) string {
	return strings.Replace(keeperPidfile(v), "storhaug-IPaddr3-", "IPaddr3-", 1)
}

// keeperArgs is the command line a keeper of v runs with.
func keeperArgs(v *vipReq) []string {
	return []string{"IPaddr3", keeperAction, v.spec.Addr.String(), v.r.Instance}
}

// keeperPid returns the pid of v's running keeper, or 0.
func keeperPid(v *vipReq) int {
	for _, f := range []string{keeperPidfile(v), legacyKeeperPidfile(v)} {
		pid, err := proc.ReadPidfile(f)
		if err == nil && proc.Runs(pid, keeperArgs(v)) {
			return pid
		}
	}
	return 0
}

func keeperRunning(v *vipReq) bool { return keeperPid(v) != 0 }

// keeperNice is the keeper's scheduling priority (nice value): its
// start-up (a Go process's) must not slow down what matters in a
// takeover: the clients' reconnections, the services moving in, the
// first monitor. Its work is a few packets a second and one list.
const keeperNice = 10

// spawnKeeper starts the keeper for target t with rounds announcement
// rounds left, the next due at next.
func spawnKeeper(v *vipReq, t vip.Target, rounds int, next time.Time) error {
	pidfile := keeperPidfile(v)
	if err := os.MkdirAll(filepath.Dir(pidfile), 0o755); err != nil {
		return fmt.Errorf("starting the helper process: %w", err)
	}
	// The keeper logs to syslog.
	pid, err := proc.Spawn(proc.Helper{
		Args: keeperArgs(v),
		Env: append(os.Environ(),
			envKeeperRounds+"="+strconv.Itoa(rounds),
			envKeeperNext+"="+strconv.FormatInt(next.UnixNano(), 10),
			envKeeperLink+"="+t.Link,
			envKeeperPrefix+"="+strconv.Itoa(t.Prefix),
		),
		Nice: keeperNice,
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

// stopKeeper ends v's keeper, if one runs: SIGTERM, then SIGKILL if it is
// still there when the stop's deadline comes close.
func stopKeeper(v *vipReq) error {
	pidfile := keeperPidfile(v)
	if pid := keeperPid(v); pid != 0 {
		args := keeperArgs(v)
		if _, err := proc.Stop(v.r.Context(), pid, func(p int) bool { return proc.Runs(p, args) }); err != nil {
			return fmt.Errorf("ending helper process %d: %w", pid, err)
		}
	}
	os.Remove(legacyKeeperPidfile(v))
	if err := os.Remove(pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ipaddr3Keeper is the keeper process: the announcement rounds left, then
// the tickle keeper when tickles are wanted, until SIGTERM.
func ipaddr3Keeper(r *ocf.Request) error {
	// Not r.Context(): that ends at the start operation's deadline.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	signal.Ignore(syscall.SIGHUP)
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	defer func() {
		// Leave the pidfile to a newer keeper.
		if b, err := os.ReadFile(keeperPidfile(v)); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(keeperPidfile(v))
		}
	}()
	h, err := v.open()
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	defer h.Close()
	spec := v.spec
	if l := r.Getenv(envKeeperLink); l != "" {
		spec.Link = l
	}
	if p, err := strconv.Atoi(r.Getenv(envKeeperPrefix)); err == nil && p > 0 {
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
	rounds, _ := strconv.Atoi(r.Getenv(envKeeperRounds))
	if rounds > 0 {
		a, err := h.NewAnnouncer(t)
		if err != nil {
			r.Log.Errorf("announcing %s on %s: %v", t.Addr, t.Link, err)
		} else {
			var next time.Time
			if ns, err := strconv.ParseInt(r.Getenv(envKeeperNext), 10, 64); err == nil && ns > 0 {
				next = time.Unix(0, ns)
			}
			sent := a.Rounds(ctx, rounds, v.interval, next, func(round int, err error) {
				r.Log.Errorf("announcing %s on %s, round %d: %v", t.Addr, t.Link, v.count-rounds+round, err)
			})
			a.Close()
			r.Log.Debugf("sent %d later announcement rounds for %s", sent, t.Addr)
		}
	}
	tickling.Wait()
	return nil
}
