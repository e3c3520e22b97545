package e2e

// The least of an NFSv4.0 client (RFC 7530 over ONC RPC, RFC 5531): enough
// to become a confirmed client of a ganesha (SETCLIENTID,
// SETCLIENTID_CONFIRM) and to ask whether ganesha still holds it (RENEW).
// libnfs' tools open and drop their state per call; this client keeps its
// client ID alive for as long as the test renews it, as a mounted client
// does, with the owner string a Linux NFSv4.0 client sends (it names the
// server address it mounted: what ganesha's release "2:<addr>" matches).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/test/lab"
)

// NFSv4 status codes the tests look at.
const (
	nfs4OK               = 0
	nfs4ErrExpired       = 10011
	nfs4ErrStaleClientID = 10022
)

const (
	opRenew              = 30
	opSetClientID        = 35
	opSetClientIDConfirm = 36
)

// xdr appends XDR (RFC 4506) items.
type xdr []byte

func (x *xdr) u32(v uint32) { *x = binary.BigEndian.AppendUint32(*x, v) }
func (x *xdr) u64(v uint64) { *x = binary.BigEndian.AppendUint64(*x, v) }
func (x *xdr) opaque(p []byte) {
	x.u32(uint32(len(p)))
	*x = append(*x, p...)
	for len(*x)%4 != 0 {
		*x = append(*x, 0)
	}
}
func (x *xdr) str(s string) { x.opaque([]byte(s)) }

// xdrReader reads XDR items; the first error sticks.
type xdrReader struct {
	b   []byte
	err error
}

func (r *xdrReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *xdrReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *xdrReader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *xdrReader) opaque() []byte {
	n := int(r.u32())
	p := r.take(n)
	r.take((4 - n%4) % 4)
	return p
}

// nfs40Conn is one TCP connection to an NFS server.
type nfs40Conn struct {
	conn net.Conn
	rd   *bufio.Reader
	xid  uint32
}

func dialNFS40(c *lab.Client, addr string) (*nfs40Conn, error) {
	var conn net.Conn
	err := c.Do(func() (err error) {
		conn, err = (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", net.JoinHostPort(addr, "2049"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &nfs40Conn{conn: conn, rd: bufio.NewReader(conn), xid: uint32(time.Now().UnixNano())}, nil
}

func (c *nfs40Conn) Close() error { return c.conn.Close() }

// compound sends one COMPOUND (minor version 0) of nops operations and
// returns its status and the results after the header.
func (c *nfs40Conn) compound(ops xdr, nops int) (uint32, *xdrReader, error) {
	c.xid++
	var m xdr
	m.u32(c.xid)
	m.u32(0)      // CALL
	m.u32(2)      // RPC version
	m.u32(100003) // NFS
	m.u32(4)
	m.u32(1) // COMPOUND
	var cred xdr
	cred.u32(0) // stamp
	cred.str("storhaug-e2e")
	cred.u32(0) // uid
	cred.u32(0) // gid
	cred.u32(0) // no more groups
	m.u32(1)    // AUTH_SYS
	m.opaque(cred)
	m.u32(0) // verifier AUTH_NONE
	m.opaque(nil)
	m.opaque(nil) // tag
	m.u32(0)      // minor version
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
	r.u32() // verifier flavor
	r.opaque()
	if acc := r.u32(); acc != 0 {
		return 0, nil, fmt.Errorf("RPC accept_stat %d", acc)
	}
	status := r.u32()
	r.opaque() // tag
	r.u32()    // number of results
	return status, r, r.err
}

// setClientID makes a confirmed client ID for owner.
func (c *nfs40Conn) setClientID(owner, cbAddr string) (uint64, error) {
	var verf [8]byte
	rand.Read(verf[:])
	var op xdr
	op.u32(opSetClientID)
	op = append(op, verf[:]...)
	op.str(owner)
	op.u32(0x40000000) // callback program
	op.str("tcp")
	op.str(cbAddr)
	op.u32(1) // callback_ident
	status, r, err := c.compound(op, 1)
	if err != nil {
		return 0, fmt.Errorf("SETCLIENTID: %w", err)
	}
	if status != nfs4OK {
		return 0, fmt.Errorf("SETCLIENTID: status %d", status)
	}
	r.u32() // resop
	r.u32() // status
	id := r.u64()
	confirm := r.take(8)
	if r.err != nil {
		return 0, fmt.Errorf("SETCLIENTID reply: %w", r.err)
	}
	op = nil
	op.u32(opSetClientIDConfirm)
	op.u64(id)
	op = append(op, confirm...)
	if status, _, err = c.compound(op, 1); err != nil || status != nfs4OK {
		return 0, fmt.Errorf("SETCLIENTID_CONFIRM: status %d, %v", status, err)
	}
	return id, nil
}

// renew renews the lease of client id: NFS4_OK while the server holds it.
func (c *nfs40Conn) renew(id uint64) (uint32, error) {
	var op xdr
	op.u32(opRenew)
	op.u64(id)
	status, _, err := c.compound(op, 1)
	return status, err
}

// heldClient is an NFSv4.0 client ID a test keeps alive by renewing it
// every second (the lab's lease is 10 s) until the server drops it.
type heldClient struct {
	owner  string
	id     uint64
	mu     sync.Mutex
	status uint32    // the RENEW status that ended the renewing
	lost   error     // the failure that ended it (a status or an I/O error)
	at     time.Time // when that was seen
	done   chan struct{}
}

// holdNFS40Client becomes, from client 1, a confirmed NFSv4.0 client of
// the ganesha behind vip, with the owner string a Linux NFSv4.0 client
// mounting vip sends, and renews it every second through node's own
// address (the client ID is the server's, whatever the address) until
// the server says it no longer holds it or the test ends.
func holdNFS40Client(t *testing.T, ctx context.Context, l *lab.Lab, vip string, node *lab.Node) *heldClient {
	t.Helper()
	c := l.Client(1)
	owner := fmt.Sprintf("Linux NFSv4.0 %s/%s tcp", c.Addr4(), vip)
	conn, err := dialNFS40(c, vip)
	if err != nil {
		t.Fatalf("NFSv4.0 client: %v", err)
	}
	defer conn.Close()
	id, err := conn.setClientID(owner, c.Addr4()+".0.1")
	if err != nil {
		t.Fatalf("NFSv4.0 client of %s: %v", vip, err)
	}
	rc, err := dialNFS40(c, node.Addr4())
	if err != nil {
		t.Fatalf("NFSv4.0 client: %v", err)
	}
	if st, err := rc.renew(id); err != nil || st != nfs4OK {
		rc.Close()
		t.Fatalf("NFSv4.0 RENEW at %s right after SETCLIENTID: status %d, %v", node.Name(), st, err)
	}
	h := &heldClient{owner: owner, id: id, done: make(chan struct{})}
	stop := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(stop) }); <-h.done; rc.Close() })
	go func() {
		defer close(h.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			st, err := rc.renew(id)
			if err == nil && st == nfs4OK {
				continue
			}
			if err == nil {
				err = fmt.Errorf("RENEW: status %d", st)
			}
			h.mu.Lock()
			h.status, h.lost, h.at = st, err, time.Now()
			h.mu.Unlock()
			return
		}
	}()
	return h
}

// Lost is why and when the server stopped holding the client (nil: it
// still does).
func (h *heldClient) Lost() (error, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost, h.at
}

// waitDropped waits up to timeout for the server to drop the client, and
// reports whether it did with STALE_CLIENTID or EXPIRED.
func (h *heldClient) waitDropped(timeout time.Duration) error {
	select {
	case <-h.done:
	case <-time.After(timeout):
		return fmt.Errorf("still held (RENEW answered OK every second for %v more)", timeout)
	}
	h.mu.Lock()
	st, err := h.status, h.lost
	h.mu.Unlock()
	switch {
	case err == nil:
		return errors.New("the renewing ended without an answer")
	case st == nfs4ErrStaleClientID || st == nfs4ErrExpired:
		return nil
	}
	return fmt.Errorf("renewing ended with %v, not STALE_CLIENTID or EXPIRED", err)
}
