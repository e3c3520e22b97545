// Package nsm speaks the NFSv3 Network Status Monitor protocol for a
// server address that moved: it reads a node's statd monitor list (the
// NFSv3 clients that hold locks there) and sends each client's statd
// SM_NOTIFY (program 100024, version 1, procedure 6) from the moved address,
// so that the client's lockd reclaims its locks on the address's new
// server, which must be in grace.
//
// It knows nothing of OCF or Pacemaker; package agents wraps it.
package nsm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// Monitor is one record of statd's monitor list (a line of
// <statd dir>/sm/<host>): a local program asked statd to watch MonName.
type Monitor struct {
	Host    string // the record's file name: statd's name for the client
	MonName string // the client as the local program named it (ganesha: its address)
	MyName  string // the name the local program gave for this server
	Priv    [16]byte
}

// ReadMonitors reads the monitor list kept in dir/sm (dir is statd's state
// directory, /var/lib/nfs on Debian). A missing list is empty; lines that
// are not records are skipped, as statd does.
func ReadMonitors(dir string) ([]Monitor, error) {
	smDir := filepath.Join(dir, "sm")
	ents, err := os.ReadDir(smDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Monitor
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(smDir, e.Name()))
		if err != nil {
			return out, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m, ok := parseRecord(sc.Text()); ok {
				m.Host = e.Name()
				out = append(out, m)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return out, fmt.Errorf("%s: %w", filepath.Join(smDir, e.Name()), err)
		}
	}
	return out, nil
}

// parseRecord parses "<addr> <prog> <vers> <proc> <priv> <mon_name> <my_name>":
// four 8-digit hex numbers, the 16-byte private cookie in hex, two names.
func parseRecord(line string) (Monitor, bool) {
	f := strings.Fields(line)
	if len(f) != 7 {
		return Monitor{}, false
	}
	for _, h := range f[:4] {
		if _, err := strconv.ParseUint(h, 16, 32); err != nil || len(h) != 8 {
			return Monitor{}, false
		}
	}
	var m Monitor
	if b, err := hex.DecodeString(f[4]); err != nil || len(b) != len(m.Priv) {
		return Monitor{}, false
	} else {
		copy(m.Priv[:], b)
	}
	m.MonName, m.MyName = f[5], f[6]
	return m, true
}

// Clients are the distinct client names of a monitor list (the record
// file names, which statd resolves to notify), sorted.
func Clients(ms []Monitor) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Host)
	}
	sort.Strings(out)
	out = compactStrings(out)
	return out
}

func compactStrings(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// NextState increments the NSM state number kept in file path (created
// with 1 when missing) to the next odd number (odd: the server is up, as
// statd counts) and returns it. The file is replaced atomically.
func NextState(path string) (int32, error) {
	var cur int64
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, err
	default:
		if s := strings.TrimSpace(string(b)); s != "" {
			if cur, err = strconv.ParseInt(s, 10, 32); err != nil || cur < 0 {
				return 0, fmt.Errorf("%s: %q is not an NSM state number", path, s)
			}
		}
	}
	next := cur + 1
	if next%2 == 0 {
		next++
	}
	if next > 1<<31-1 {
		next = 1
	}
	if err := atomicfile.Write(path, []byte(strconv.FormatInt(next, 10)+"\n"), 0o644); err != nil {
		return 0, err
	}
	return int32(next), nil
}

// Notifier sends SM_NOTIFY for one server address.
type Notifier struct {
	// Source is the address the calls are sent from: the moved server
	// address (clients' statd may check the sender). It must be local.
	Source netip.Addr
	// MonName names the server as its clients monitor it: the address
	// they mounted, in the form they used ("" : Source).
	MonName string
	// State is the server's new NSM state number (NextState).
	State int32
	// PortmapPort is the clients' portmapper port (0: 111).
	PortmapPort uint16
	// Retransmit is the first wait for a reply before sending again; it
	// doubles up to 4 s (0: 500 ms).
	Retransmit time.Duration
	// Resolver resolves client names that are not addresses (nil: the
	// default resolver).
	Resolver *net.Resolver
}

// Result is the outcome of notifying one client.
type Result struct {
	Client string
	Addr   netip.Addr
	Err    error
}

// NotifyAll notifies every client in parallel, each until it answers or
// ctx ends, and returns one result per client in the order given.
func (n *Notifier) NotifyAll(ctx context.Context, clients []string) []Result {
	res := make([]Result, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = Result{Client: c}
			a, err := n.resolve(ctx, c)
			if err != nil {
				res[i].Err = err
				return
			}
			res[i].Addr = a
			res[i].Err = n.Notify(ctx, a)
		}()
	}
	wg.Wait()
	return res
}

func (n *Notifier) resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	r := n.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	network := "ip4"
	if n.Source.Is6() {
		network = "ip6"
	}
	as, err := r.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(as) == 0 {
		return netip.Addr{}, fmt.Errorf("%s has no address", host)
	}
	return as[0].Unmap(), nil
}

// Notify sends SM_NOTIFY to the statd of the client at addr: it asks the
// client's portmapper for statd's UDP port, then calls statd, both over
// UDP from Source with retransmits, until a reply or ctx's end.
func (n *Notifier) Notify(ctx context.Context, addr netip.Addr) error {
	if !n.Source.IsValid() {
		return errors.New("nsm: no source address")
	}
	if addr.Is4() != n.Source.Is4() {
		return fmt.Errorf("nsm: client %s and source %s are not of one family", addr, n.Source)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.Source, 0)))
	if err != nil {
		return fmt.Errorf("nsm: cannot send from %s: %w", n.Source, err)
	}
	defer conn.Close()
	pm := n.PortmapPort
	if pm == 0 {
		pm = 111
	}
	res, err := n.call(ctx, conn, netip.AddrPortFrom(addr, pm), progPortmap, versPortmap, procGetport,
		getportArgs{Prog: progStatus, Vers: versStatus, Prot: ipprotoUDP}.append(nil))
	if err != nil {
		return fmt.Errorf("portmapper of %s: %w", addr, err)
	}
	port, err := decodePort(res)
	if err != nil {
		return fmt.Errorf("portmapper of %s: %w", addr, err)
	}
	if port == 0 {
		return fmt.Errorf("statd of %s is not registered with its portmapper", addr)
	}
	name := n.MonName
	if name == "" {
		name = n.Source.String()
	}
	if len(name) > maxMonNameLen {
		return fmt.Errorf("nsm: mon_name of %d bytes (at most %d)", len(name), maxMonNameLen)
	}
	if _, err := n.call(ctx, conn, netip.AddrPortFrom(addr, port), progStatus, versStatus, procSMNotify,
		statChge{MonName: name, State: n.State}.append(nil)); err != nil {
		return fmt.Errorf("statd of %s: %w", addr, err)
	}
	return nil
}

// call sends one RPC call to dst and waits for its reply, sending it again
// after each retransmit interval, until ctx ends.
func (n *Notifier) call(ctx context.Context, conn *net.UDPConn, dst netip.AddrPort, prog, vers, proc uint32, args []byte) ([]byte, error) {
	var x [4]byte
	rand.Read(x[:])
	xid := binary.BigEndian.Uint32(x[:])
	msg := append(callHeader{XID: xid, Prog: prog, Vers: vers, Proc: proc}.append(nil), args...)
	wait := n.Retransmit
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	buf := make([]byte, 8192)
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("%w (last: %v)", err, lastErr)
			}
			return nil, fmt.Errorf("no reply: %w", err)
		}
		if _, err := conn.WriteToUDPAddrPort(msg, dst); err != nil {
			lastErr = err
		}
		end := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(end) {
			end = d
		}
		conn.SetReadDeadline(end)
		for {
			k, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					lastErr = err // e.g. ICMP port unreachable: try again
				}
				break
			}
			if from.Addr().Unmap() != dst.Addr() {
				continue
			}
			r, err := decodeReply(buf[:k])
			if r.XID != xid {
				continue
			}
			if err != nil {
				return nil, err
			}
			return append([]byte(nil), r.Results...), nil
		}
		if wait < 4*time.Second {
			wait *= 2
		}
	}
}
