package e2e

// Grace after a failover, in the configuration storhaug setup builds (the
// trigger before its VIP, ganesha with the cluster's Server_Scope), with
// the least of an NFSv4.1 client (RFC 8881): EXCHANGE_ID, CREATE_SESSION,
// SEQUENCE and RECLAIM_COMPLETE, as a mounted Linux client sends them at
// mount and again, to the new server, after the address moved.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/nsm/nsmtest"
	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/tickle"
)

const (
	opExchangeID      = 42
	opCreateSession   = 43
	opSequence        = 53
	opReclaimComplete = 58
)

// nfs41Client is an NFSv4.1 client identity (owner, verifier) and, once
// it has one, its session with a server.
type nfs41Client struct {
	owner   string
	verf    [8]byte
	conn    *nfs40Conn
	session [16]byte
	seq     uint32 // slot 0's last sequence id
	scope   string // the server scope EXCHANGE_ID reported
}

// compound41 sends one COMPOUND of minor version 1.
func (c *nfs40Conn) compound41(ops xdr, nops int) (uint32, *xdrReader, error) {
	c.xid++
	var m xdr
	m.u32(c.xid)
	m.u32(0)      // CALL
	m.u32(2)      // RPC version
	m.u32(100003) // NFS
	m.u32(4)
	m.u32(1) // COMPOUND
	var cred xdr
	cred.u32(0)
	cred.str("storhaug-e2e")
	cred.u32(0)
	cred.u32(0)
	cred.u32(0)
	m.u32(1) // AUTH_SYS
	m.opaque(cred)
	m.u32(0)
	m.opaque(nil)
	m.opaque(nil) // tag
	m.u32(1)      // minor version 1
	m.u32(uint32(nops))
	m = append(m, ops...)

	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	var rec xdr
	rec.u32(0x80000000 | uint32(len(m)))
	if _, err := c.conn.Write(append(rec, m...)); err != nil {
		return 0, nil, err
	}
	var reply []byte
	for {
		var h [4]byte
		if _, err := io.ReadFull(c.rd, h[:]); err != nil {
			return 0, nil, err
		}
		n := binary.BigEndian.Uint32(h[:])
		frag := make([]byte, n&0x7fffffff)
		if _, err := io.ReadFull(c.rd, frag); err != nil {
			return 0, nil, err
		}
		reply = append(reply, frag...)
		if n&0x80000000 != 0 {
			break
		}
	}
	r := &xdrReader{b: reply}
	if xid := r.u32(); xid != c.xid {
		return 0, nil, fmt.Errorf("reply xid %d, want %d", xid, c.xid)
	}
	if typ, stat := r.u32(), r.u32(); typ != 1 || stat != 0 {
		return 0, nil, fmt.Errorf("RPC reply type %d, reply_stat %d (denied)", typ, stat)
	}
	r.u32()
	r.opaque()
	if acc := r.u32(); acc != 0 {
		return 0, nil, fmt.Errorf("RPC accept_stat %d", acc)
	}
	status := r.u32()
	r.opaque()
	r.u32()
	return status, r, r.err
}

func chanAttrs(x *xdr) {
	x.u32(0)       // header pad
	x.u32(1 << 20) // max request
	x.u32(1 << 20) // max response
	x.u32(8192)    // max response cached
	x.u32(16)      // max operations
	x.u32(4)       // max requests
	x.u32(0)       // no RDMA ird
}

// connect dials addr from the lab's client and establishes a session:
// EXCHANGE_ID, CREATE_SESSION, then RECLAIM_COMPLETE (a client whose state
// was lost has reclaimed what it could; a new one has nothing to reclaim).
func (cl *nfs41Client) connect(c *lab.Client, addr string) error {
	conn, err := dialNFS40(c, addr)
	if err != nil {
		return err
	}
	cl.conn = conn
	var op xdr
	op.u32(opExchangeID)
	op = append(op, cl.verf[:]...)
	op.str(cl.owner)
	op.u32(0) // flags
	op.u32(0) // SP4_NONE
	op.u32(0) // no implementation id
	st, r, err := conn.compound41(op, 1)
	if err != nil || st != nfs4OK {
		return fmt.Errorf("EXCHANGE_ID: status %d, %v", st, err)
	}
	r.u32()
	r.u32()
	id := r.u64()
	seq := r.u32()
	r.u32()                                                   // flags
	r.u32()                                                   // SP4_NONE
	r.u64()                                                   // server owner minor id
	r.opaque()                                                // major id
	cl.scope = strings.TrimSuffix(string(r.opaque()), "\x00") // ganesha 4.3 sends the C string's NUL
	if r.err != nil {
		return fmt.Errorf("EXCHANGE_ID reply: %w", r.err)
	}
	op = nil
	op.u32(opCreateSession)
	op.u64(id)
	op.u32(seq)
	op.u32(0) // flags
	chanAttrs(&op)
	chanAttrs(&op)
	op.u32(0x40000000) // callback program
	op.u32(1)          // one security parameter:
	op.u32(0)          // AUTH_NONE
	st, r, err = conn.compound41(op, 1)
	if err != nil || st != nfs4OK {
		return fmt.Errorf("CREATE_SESSION: status %d, %v", st, err)
	}
	r.u32()
	r.u32()
	copy(cl.session[:], r.take(16))
	if r.err != nil {
		return fmt.Errorf("CREATE_SESSION reply: %w", r.err)
	}
	cl.seq = 0
	if st, err := cl.sequence(true); err != nil || st != nfs4OK {
		return fmt.Errorf("SEQUENCE, RECLAIM_COMPLETE: status %d, %v", st, err)
	}
	return nil
}

// sequence sends SEQUENCE on slot 0 (renewing the lease), with
// RECLAIM_COMPLETE when reclaim is set.
func (cl *nfs41Client) sequence(reclaim bool) (uint32, error) {
	cl.seq++
	var op xdr
	op.u32(opSequence)
	op = append(op, cl.session[:]...)
	op.u32(cl.seq)
	op.u32(0) // slot
	op.u32(0) // highest slot
	op.u32(0) // do not cache
	n := 1
	if reclaim {
		op.u32(opReclaimComplete)
		op.u32(0) // not one file system: all
		n++
	}
	st, _, err := cl.conn.compound41(op, n)
	return st, err
}

func newNFS41Client(owner string) *nfs41Client {
	cl := &nfs41Client{owner: owner}
	rand.Read(cl.verf[:])
	return cl
}

// graceCIB is what storhaug setup builds for NFS, cut down to one VIP on
// n1: the ganesha clone with the cluster's scope, the trigger colocated
// with the VIP and ordered before it (and after ganesha).
func graceCIB(l *lab.Lab, ip, tickleDir string) (resources, constraints string) {
	resources = fmt.Sprintf(`<resources>
  <clone id="nfs-ganesha-clone">
    <meta_attributes id="nfs-ganesha-clone-meta">
      <nvpair id="nfs-ganesha-clone-interleave" name="interleave" value="true"/>
      <nvpair id="nfs-ganesha-clone-notify" name="notify" value="true"/>
    </meta_attributes>
    <primitive id="nfs-ganesha" class="ocf" provider="storhaug" type="ganesha">
      <instance_attributes id="nfs-ganesha-params">
        <nvpair id="nfs-ganesha-state_mnt" name="state_mnt" value="%s"/>
        <nvpair id="nfs-ganesha-logfile" name="logfile" value="%s"/>
        <nvpair id="nfs-ganesha-server_scope" name="server_scope" value="%s"/>
      </instance_attributes>
      <operations>
        <op id="nfs-ganesha-monitor" name="monitor" interval="5s" timeout="30s"/>
      </operations>
    </primitive>
  </clone>
  <primitive id="vip1" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="vip1-params">
      <nvpair id="vip1-ip" name="ip" value="%s"/>
      <nvpair id="vip1-cidr_netmask" name="cidr_netmask" value="24"/>
      <nvpair id="vip1-nic" name="nic" value="eth0"/>
    </instance_attributes>
    <meta_attributes id="vip1-meta">
      <nvpair id="vip1-stickiness" name="resource-stickiness" value="0"/>
    </meta_attributes>
    <operations>
      <op id="vip1-monitor" name="monitor" interval="5s" timeout="20s"/>
    </operations>
  </primitive>
  <clone id="vip1_trigger-clone">
    <meta_attributes id="vip1_trigger-clone-meta">
      <nvpair id="vip1_trigger-clone-max" name="clone-max" value="1"/>
      <nvpair id="vip1_trigger-clone-notify" name="notify" value="true"/>
      <nvpair id="vip1_trigger-clone-interleave" name="interleave" value="true"/>
    </meta_attributes>
    <primitive id="vip1_trigger" class="ocf" provider="storhaug" type="ganesha_trigger">
      <instance_attributes id="vip1_trigger-params">
        <nvpair id="vip1_trigger-ip" name="ip" value="%s"/>
        <nvpair id="vip1_trigger-tickle_dir" name="tickle_dir" value="%s"/>
      </instance_attributes>
      <operations>
        <op id="vip1_trigger-monitor" name="monitor" interval="10s" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
</resources>`, l.SharedDir(), ganeshaLogFile, l.Prefix(), ip, ip, tickleDir)
	constraints = `<constraints>
  <rsc_colocation id="vip1-with-ganesha" rsc="vip1" with-rsc="nfs-ganesha-clone" score="INFINITY"/>
  <rsc_order id="ganesha-then-vip1" first="nfs-ganesha-clone" then="vip1"/>
  <rsc_colocation id="vip1_trigger-with-vip1" rsc="vip1_trigger-clone" with-rsc="vip1" score="INFINITY"/>
  <rsc_order id="trigger-then-vip1" first="vip1_trigger-clone" then="vip1"/>
  <rsc_order id="ganesha-then-trigger" first="nfs-ganesha-clone" then="vip1_trigger-clone"/>
  <rsc_location id="vip1-prefers-n1" rsc="vip1" node="n1" score="100"/>
</constraints>`
	return
}

// graceCheckRE is ganesha's reaper's look at grace: the clients that sent
// RECLAIM_COMPLETE and the clients in the recovery records.
var graceCheckRE = regexp.MustCompile(`check grace:reclaim complete\((\d+)\) clid count\((\d+)\)`)

// An NFSv4-only cluster (Enable_NLM = false), the owner of a VIP crashes
// while an NFSv4.1 client holds state through the VIP:
//   - the node taking the VIP over is in grace before the address answers
//     there (a client that reconnects at once must not get fresh state);
//   - every node reports the same server scope (the client may reclaim);
//   - grace ends because every recorded client has sent RECLAIM_COMPLETE
//     (ganesha's reaper sees the counts equal), not at Grace_Period: the
//     record of a client of n1's other address (by the trigger's
//     tickle_dir) is not loaded with the VIP's;
//   - the NFSv3 clients in n1's statd monitor list get SM_NOTIFY from the
//     address, once it is up on its new owner.
func TestGraceEarlyLiftAfterCrash(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 8*time.Minute)
	const vip = "198.51.100.213"
	vipsAbsent(t, l, vip)
	c := l.Client(1)
	// The connection lists the trigger reads (IPaddr3's tickle_dir): n1's
	// other address had a client of its own, which reclaims where that
	// address goes; its record must not be loaded with vip's, or grace
	// waits for it to its end.
	lists := filepath.Join(l.SharedDir(), "grace-lists")
	other := netip.MustParseAddr("198.51.100.99") // a client of n1's other address
	if err := tickle.WriteFile(lists, netip.MustParseAddr("198.51.100.214"), []tickle.Conn{
		tickle.NewConn(netip.MustParseAddrPort("198.51.100.214:2049"), netip.AddrPortFrom(other, 812)),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(lists) })
	res, cons := graceCIB(l, vip, lists)
	if err := l.ReplaceCIB(ctx, "resources", res); err != nil {
		t.Fatal(err)
	}
	if err := l.ReplaceCIB(ctx, "constraints", cons); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
			t.Errorf("reset CIB: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			ganeshaDiag(t, l)
		}
	})
	all := []string{"n1", "n2", "n3"}
	d := waitPlacement(t, ctx, l, "n1", all, 2*time.Minute)
	t.Logf("ganesha clone, trigger and vip1 up on n1 in %v", d.Round(time.Millisecond))
	waitGrace(t, ctx, l, false, time.Minute, all...)

	// the client: a session through the VIP, renewed every 2 s (lease 10 s)
	cl := newNFS41Client(fmt.Sprintf("Linux NFSv4.1 storhaug-e2e-%d", time.Now().UnixNano()))
	if err := cl.connect(c, vip); err != nil {
		t.Fatalf("NFSv4.1 client of %s on n1: %v", vip, err)
	}
	scope1 := cl.scope
	if scope1 != l.Prefix() {
		t.Errorf("n1 reports server scope %q, want the cluster's, %q", scope1, l.Prefix())
	}
	v4recov := filepath.Join(l.SharedDir(), "nfs-ganesha", "n1", "ganesha", "v4recov")
	if err := l.WaitFor(ctx, "the client's record on n1", 10*time.Second, func() (bool, error) {
		ents, err := os.ReadDir(v4recov)
		if err != nil {
			return false, err
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
			if strings.Contains(e.Name(), "storhaug-e2e-") && strings.Contains(e.Name(), c.Addr4()+"-(") { // ganesha may write the address v4-mapped
				return true, nil
			}
		}
		return false, fmt.Errorf("records %v", names)
	}); err != nil {
		t.Fatal(err)
	}
	otherID := "Linux NFSv4.1 storhaug-e2e-other"
	otherRec := filepath.Join(v4recov, fmt.Sprintf("%s-(%d:%s)", other, len(otherID), otherID))
	if err := os.MkdirAll(otherRec, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(otherRec) })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if st, err := cl.sequence(false); err != nil || st != nfs4OK {
					return // n1 went away
				}
			}
		}
	}()

	// An NFSv3 client of n1 (as statd records one that holds an NLM
	// lock), a fake one on the client's address: its portmapper on 111.
	var v3 *nsmtest.Client
	if err := c.Do(func() error {
		v3 = nsmtest.StartAt(t, netip.MustParseAddr(c.Addr4()), 111)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	smDir := filepath.Join(l.SharedDir(), "nfs-ganesha", "n1", "statd", "sm")
	rec := filepath.Join(smDir, c.Addr4())
	if err := os.MkdirAll(smDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, []byte(fmt.Sprintf("0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff %s n1\n", c.Addr4())), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(rec) })

	logs := markGaneshaLogs(l)
	t0 := time.Now()
	if err := l.Crash("n1"); err != nil {
		t.Fatal(err)
	}
	if err := l.CutLink("n1"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	cl.conn.Close()

	// The first moment the address answers NFS again, its new owner must
	// already be in grace: look for it every 50 ms, ask the survivors'
	// ganesha at once.
	var firstUp time.Duration
	inGraceAtFirstUp := map[string]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	look := time.NewTicker(50 * time.Millisecond)
	defer look.Stop()
	for firstUp == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s:2049 did not answer within 2 minutes of the crash", vip)
		}
		var up bool
		c.Do(func() error {
			conn, err := (&net.Dialer{Timeout: 50 * time.Millisecond}).Dial("tcp", net.JoinHostPort(vip, "2049"))
			if err == nil {
				up = true
				conn.Close()
			}
			return nil
		})
		if !up {
			<-look.C
			continue
		}
		firstUp = time.Since(t0)
		for _, n := range []string{"n2", "n3"} {
			in, err := l.Node(n).GaneshaInGrace(ctx)
			if err != nil {
				t.Fatalf("get_grace on %s: %v", n, err)
			}
			inGraceAtFirstUp[n] = in
		}
	}
	var owner string
	if err := l.WaitFor(ctx, "vip1's new owner", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		on := s.RunningOn("vip1")
		if len(on) != 1 || on[0] == "n1" {
			return false, fmt.Errorf("vip1 on %v", on)
		}
		owner = on[0]
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("n1 crashed: %s answers on %s %v later; its ganesha in grace then: %v", vip, owner, firstUp.Round(time.Millisecond), inGraceAtFirstUp[owner])
	if !inGraceAtFirstUp[owner] {
		t.Errorf("%s answered NFS on %s before ganesha there was in grace: a client reconnecting then gets fresh state, unprotected", vip, owner)
	}
	if set := ganesha.TakeoverSetName(netip.MustParseAddr(vip)); !logs.read(owner, set) {
		t.Errorf("ganesha on %s did not read n1's client records for %s (grace 5:%s)", owner, vip, set)
	}

	// the NFSv3 client is told, from the address, that its server restarted
	if err := l.WaitFor(ctx, "SM_NOTIFY to the NFSv3 client", 30*time.Second, func() (bool, error) {
		for _, n := range v3.Notifications() {
			if n.From.String() == vip && n.MonName == vip && n.State%2 == 1 {
				return true, nil
			}
		}
		return false, fmt.Errorf("notifications %+v", v3.Notifications())
	}); err != nil {
		t.Error(err)
	}

	// the client comes back, as a Linux client does: a new session, then
	// RECLAIM_COMPLETE; the new owner reports the same scope
	if err := cl.connect(c, vip); err != nil {
		t.Fatalf("NFSv4.1 client of %s on %s after the crash: %v", vip, owner, err)
	}
	defer cl.conn.Close()
	if cl.scope != scope1 {
		t.Errorf("server scope after the move %q, before %q: Linux clients refuse to reclaim (server scope mismatch)", cl.scope, scope1)
	}
	lift := waitGrace(t, ctx, l, false, time.Minute, owner)
	t.Logf("grace on %s lifted %v after the client's RECLAIM_COMPLETE (%v after the crash; Grace_Period 20 s)",
		owner, lift.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	// why it ended: the reaper's last look before the lift saw every
	// recorded client's RECLAIM_COMPLETE, not the end of Grace_Period
	log := logs.since(owner)
	end := strings.Index(log, "NOT IN GRACE")
	if end < 0 {
		t.Fatalf("ganesha on %s logged no end of grace:\n%s", owner, log)
	}
	checks := graceCheckRE.FindAllStringSubmatch(log[:end], -1)
	if len(checks) == 0 {
		t.Fatalf("ganesha on %s logged no grace check before the lift", owner)
	}
	last := checks[len(checks)-1]
	rc, _ := strconv.Atoi(last[1])
	clids, _ := strconv.Atoi(last[2])
	if clids < 1 || rc != clids {
		t.Errorf("grace on %s ended with %d of %d recorded clients reclaimed: it waited out Grace_Period instead of lifting early", owner, rc, clids)
	}
}
