package lab

// Fencing in the lab, the way fence_virsh or fence_xvm + fence_virtd do it
// for virtual machines: a fence agent inside every node
// (/usr/sbin/fence_storhaug_lab, stonith:fence_storhaug_lab to Pacemaker)
// asks the lab host, over a unix socket under the lab's root (the nodes see
// the host's file system), to power a node off or on. On the host a daemon
// of the lab (storhaug-lab-fenced:<prefix>, started by Up in a session of
// its own) carries the requests out; it lives as long as the lab, whatever
// brought the lab up, and Sweep ends it.
//
// Power off: the node's links go down (inside its network namespace, so
// that its addresses no longer answer ARP or neighbour discovery for its
// VIPs) and its PID 1 is SIGKILLed (every process of the node dies at
// once). Power on: the node boots again, with fresh links (only its own
// addresses: a rebooted machine has lost the VIPs it held), and starts the
// services the lab's Options say are Started, in the background, as a
// machine's boot sequence does: "on" returns once the node runs.
//
// The agent is this very program: Up copies it into the lab as
// <root>/sbin/fence_storhaug_lab, and package lab's init runs the agent
// when called by that name.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// FenceAgent is the lab's fence agent: /usr/sbin/fence_storhaug_lab in
	// every node, stonith:fence_storhaug_lab in the CIB.
	FenceAgent = "fence_storhaug_lab"
	// FenceResource is the id of the lab's stonith resource (one device
	// for every node, pcmk_host_list).
	FenceResource = "lab-fence"

	fencedEnv    = "STORHAUG_LAB_FENCED"
	fenceSockRel = "fence.sock"
	fencedLogRel = "fenced.log"
)

// FenceRequest is what the agent sends the lab's fence daemon: one JSON
// object on one line.
type FenceRequest struct {
	Action string `json:"action"`         // "on", "off", "reboot", "status", "list"
	Node   string `json:"node,omitempty"` // for on, off, reboot, status
}

// FenceReply is the daemon's answer, one JSON object on one line.
type FenceReply struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
	Power string   `json:"power,omitempty"` // status: "on" or "off"
	Nodes []string `json:"nodes,omitempty"` // list
}

func init() {
	if prefix := os.Getenv(fencedEnv); prefix != "" {
		os.Exit(fencedMain(prefix))
	}
	if filepath.Base(os.Args[0]) == FenceAgent && os.Getenv(initEnv) == "" && os.Getenv(guardEnv) == "" {
		os.Exit(fenceAgentMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
}

// FenceSocket is the path of the lab's fence socket (the same on the host
// and in the nodes).
func (l *Lab) FenceSocket() string { return filepath.Join(l.root, fenceSockRel) }

// fenceXML is the lab's stonith resource: one device fences every node.
func (l *Lab) fenceXML() string {
	names := make([]string, len(l.nodes))
	for i, n := range l.nodes {
		names[i] = n.name
	}
	id := FenceResource
	delay := ""
	if len(l.nodes) == 2 {
		// two_node: both halves of a split keep quorum and shoot; a random
		// delay lets one win instead of both dying.
		delay = fmt.Sprintf(`<nvpair id="%s-delay" name="pcmk_delay_max" value="3s"/>`, id)
	}
	return fmt.Sprintf(`<primitive id="%[1]s" class="stonith" type="%[2]s">`+
		`<instance_attributes id="%[1]s-ia">`+
		`<nvpair id="%[1]s-socket" name="socket" value="%[3]s"/>`+
		`<nvpair id="%[1]s-hosts" name="pcmk_host_list" value="%[4]s"/>%[5]s`+
		`</instance_attributes>`+
		`<operations><op id="%[1]s-monitor" name="monitor" interval="60s" timeout="20s"/></operations>`+
		`</primitive>`, id, FenceAgent, l.FenceSocket(), strings.Join(names, " "), delay)
}

// installFence copies this program into the lab as the fence agent (the
// nodes see <root>/sbin as part of /usr/sbin).
func (l *Lab) installFence() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(l.root, "sbin", FenceAgent), b, 0o755)
}

// startFenced starts the lab's fence daemon (from the lab's copy of this
// program, so that it does not depend on the caller's binary) and waits
// until it listens.
func (l *Lab) startFenced() error {
	logf, err := os.OpenFile(filepath.Join(l.root, fencedLogRel), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(filepath.Join(l.root, "sbin", FenceAgent))
	cmd.Args = []string{fencedMarker(l.opts.Prefix)}
	cmd.Env = append(append([]string(nil), baseEnv...), fencedEnv+"="+l.opts.Prefix)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("lab: fence daemon: %w", err)
	}
	start, _ := procStart(cmd.Process.Pid)
	l.mu.Lock()
	l.fencedPid, l.fencedStart = cmd.Process.Pid, start
	l.mu.Unlock()
	// Not our child for long: it must outlive this process. Reap it if it
	// dies while we run.
	go cmd.Wait()
	if err := l.saveState(); err != nil {
		return err
	}
	msg := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); msg <- strings.TrimSpace(string(b)) }()
	select {
	case m := <-msg:
		if m != "ok" {
			return fmt.Errorf("lab: fence daemon: %q (log: %s)", m, filepath.Join(l.root, fencedLogRel))
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("lab: fence daemon did not report within 30s")
	}
	l.logf("fence daemon pid %d on %s", cmd.Process.Pid, l.FenceSocket())
	return nil
}

func fencedMarker(prefix string) string { return "storhaug-lab-fenced:" + prefix }

// fencedMain is the fence daemon.
func fencedMain(prefix string) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	ready := os.NewFile(3, "ready")
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	fail := func(err error) int {
		logf("fenced: %v", err)
		fmt.Fprintf(ready, "error: %v\n", err)
		return 1
	}
	l, err := Attach(prefix, logf)
	if err != nil {
		return fail(err)
	}
	l.fenced = true
	sock := l.FenceSocket()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fail(err)
	}
	os.Chmod(sock, 0o600)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	logf("fenced: lab %s, listening on %s", prefix, sock)
	for {
		c, err := ln.Accept()
		if err != nil {
			logf("fenced: accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go l.serveFence(c, logf)
	}
}

func (l *Lab) serveFence(c net.Conn, logf func(string, ...any)) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		logf("fenced: read request: %v", err)
		return
	}
	var req FenceRequest
	var rep FenceReply
	if err := json.Unmarshal(line, &req); err != nil {
		rep.Error = "bad request: " + err.Error()
	} else {
		t0 := time.Now()
		rep = l.fenceDo(req)
		logf("fenced: %s %s: ok=%v %s%s (%.2fs)", req.Action, req.Node, rep.OK, rep.Power, rep.Error, time.Since(t0).Seconds())
	}
	b, _ := json.Marshal(rep)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(b, '\n'))
}

func (l *Lab) fenceDo(req FenceRequest) FenceReply {
	if req.Action == "list" {
		var names []string
		for _, n := range l.nodes {
			names = append(names, n.name)
		}
		return FenceReply{OK: true, Nodes: names}
	}
	n := l.Node(req.Node)
	if n == nil {
		return FenceReply{Error: fmt.Sprintf("no node %q in lab %s", req.Node, l.opts.Prefix)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	switch req.Action {
	case "status":
		p := "off"
		if n.Alive() {
			p = "on"
		}
		return FenceReply{OK: true, Power: p}
	case "off":
		err = n.powerOff(ctx)
	case "on":
		err = n.powerOn(ctx)
	case "reboot":
		if err = n.powerOff(ctx); err == nil {
			err = n.powerOn(ctx)
		}
	default:
		err = fmt.Errorf("unknown action %q", req.Action)
	}
	if err != nil {
		return FenceReply{Error: err.Error()}
	}
	return FenceReply{OK: true}
}

// powerOff: links down, then every process of the node killed at once.
func (n *Node) powerOff(ctx context.Context) error {
	unlock, err := n.lockFile(ctx, "power.lock")
	if err != nil {
		return err
	}
	defer unlock()
	n.lab.logf("power off %s", n.name)
	if err := n.setLinks(false); err != nil {
		return err
	}
	err = n.kill()
	n.lab.saveState()
	return err
}

// powerOn boots the node (a no-op if it runs) and starts its Started
// services in the background; Recover waits for them.
func (n *Node) powerOn(ctx context.Context) error {
	unlock, err := n.lockFile(ctx, "power.lock")
	if err != nil {
		return err
	}
	defer unlock()
	if n.Alive() {
		return nil
	}
	n.lab.logf("power on %s", n.name)
	t0 := time.Now()
	if err := n.boot(); err != nil {
		return err
	}
	n.lab.saveState()
	seqUnlock, err := n.lockFile(ctx, "boot.lock")
	if err != nil {
		return err
	}
	go func() {
		defer seqUnlock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := n.lab.startServices(ctx, []*Node{n}, t0); err != nil {
			n.lab.logf("%s: boot sequence: %v", n.name, err)
			return
		}
		n.lab.logf("%s: boot sequence done in %.1fs", n.name, time.Since(t0).Seconds())
	}()
	return nil
}

// lockFile takes an exclusive lock on a file in the node's directory,
// shared by every process of the lab (the one that brought it up, the
// fence daemon): power.lock around power changes, boot.lock around a boot
// sequence (starting services).
func (n *Node) lockFile(ctx context.Context, name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(n.Dir(), name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lab: %s: %s: %w", n.name, name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ---- the agent ----

// Exit codes as fence-agents use them.
const (
	fenceOK        = 0
	fenceError     = 1 // EC_GENERIC_ERROR; also status: "no answer"
	fenceStatusOff = 2 // status: the node is off
)

func fenceAgentMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts := map[string]string{}
	if len(args) == 0 {
		// Pacemaker's fencer: key=value lines on stdin.
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				fmt.Fprintf(stderr, "Parse error: Ignoring unknown line %q\n", line)
				continue
			}
			opts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	} else {
		short := map[string]string{"-o": "action", "-n": "plug", "-s": "socket"}
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "-h" || a == "--help":
				fmt.Fprintf(stdout, "usage: %s [-o ACTION] [-n NODE] [-s SOCKET], or key=value lines on stdin\n"+
					"  actions: on off reboot status monitor list list-status metadata validate-all\n", FenceAgent)
				return fenceOK
			case strings.HasPrefix(a, "--"):
				k, v, ok := strings.Cut(a[2:], "=")
				if !ok {
					if i+1 >= len(args) {
						fmt.Fprintf(stderr, "Failed: option --%s needs a value\n", k)
						return fenceError
					}
					i++
					v = args[i]
				}
				opts[k] = v
			case short[a] != "":
				if i+1 >= len(args) {
					fmt.Fprintf(stderr, "Failed: option %s needs a value\n", a)
					return fenceError
				}
				i++
				opts[short[a]] = args[i]
			default:
				fmt.Fprintf(stderr, "Failed: unknown argument %q\n", a)
				return fenceError
			}
		}
	}
	action := opts["action"]
	if action == "" {
		action = opts["option"] // the old name
	}
	if action == "" {
		action = "reboot"
	}
	node := opts["plug"]
	if node == "" {
		node = opts["port"]
	}
	sock := opts["socket"]
	switch action {
	case "metadata":
		io.WriteString(stdout, fenceMetadata)
		return fenceOK
	case "validate-all":
		if sock == "" {
			fmt.Fprintln(stderr, "Failed: parameter socket (the lab's fence socket) is required")
			return fenceError
		}
		return fenceOK
	case "on", "off", "reboot", "status", "monitor", "list", "list-status":
	default:
		fmt.Fprintf(stderr, "Failed: Unrecognised action %q\n", action)
		return fenceError
	}
	if sock == "" {
		fmt.Fprintln(stderr, "Failed: parameter socket (the lab's fence socket) is required")
		return fenceError
	}
	ask := func(req FenceRequest) (FenceReply, error) { return askFenced(sock, req, 60*time.Second) }
	switch action {
	case "monitor", "list", "list-status":
		rep, err := ask(FenceRequest{Action: "list"})
		if err != nil {
			fmt.Fprintf(stderr, "Failed: %v\n", err)
			return fenceError
		}
		for _, nd := range rep.Nodes {
			switch action {
			case "list":
				fmt.Fprintf(stdout, "%s,%s\n", nd, nd)
			case "list-status":
				st, err := ask(FenceRequest{Action: "status", Node: nd})
				if err != nil {
					fmt.Fprintf(stderr, "Failed: %v\n", err)
					return fenceError
				}
				fmt.Fprintf(stdout, "%s,%s,%s\n", nd, nd, strings.ToUpper(st.Power))
			}
		}
		return fenceOK
	}
	if node == "" {
		fmt.Fprintln(stderr, "Failed: You have to enter plug number or machine identification (plug)")
		return fenceError
	}
	rep, err := ask(FenceRequest{Action: action, Node: node})
	if err != nil {
		fmt.Fprintf(stderr, "Failed: %v\n", err)
		return fenceError
	}
	if action == "status" {
		fmt.Fprintf(stdout, "Status: %s\n", strings.ToUpper(rep.Power))
		if rep.Power == "off" {
			return fenceStatusOff
		}
		return fenceOK
	}
	switch action {
	case "off":
		fmt.Fprintln(stdout, "Success: Powered OFF")
	case "on":
		fmt.Fprintln(stdout, "Success: Powered ON")
	default:
		fmt.Fprintln(stdout, "Success: Rebooted")
	}
	return fenceOK
}

// askFenced sends one request to the lab's fence daemon.
func askFenced(sock string, req FenceRequest, timeout time.Duration) (FenceReply, error) {
	var rep FenceReply
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return rep, fmt.Errorf("the lab's fence daemon: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return rep, fmt.Errorf("the lab's fence daemon: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("the lab's fence daemon: no answer: %w", err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("the lab's fence daemon: bad answer %q: %w", line, err)
	}
	if !rep.OK {
		return rep, fmt.Errorf("%s %s: %s", req.Action, req.Node, rep.Error)
	}
	return rep, nil
}

const fenceMetadata = `<?xml version="1.0" ?>
<resource-agent name="fence_storhaug_lab" shortdesc="Fence agent for the storhaug lab's nodes">
<longdesc>fence_storhaug_lab powers a node of the storhaug test lab off or on by asking the lab's host, over a unix socket, as fence_xvm asks fence_virtd. Power off takes the node's links down and kills every process of the node at once; power on boots it again. For the lab only.</longdesc>
<vendor-url>https://github.com/storhaug/storhaug</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="0">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot"  />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="0" obsoletes="port">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string"  />
		<shortdesc lang="en">The node to act on (its name: n1, n2, ...)</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="0" deprecated="1">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string"  />
		<shortdesc lang="en">The node to act on (its name: n1, n2, ...)</shortdesc>
	</parameter>
	<parameter name="socket" unique="0" required="1">
		<getopt mixed="-s, --socket=[path]" />
		<content type="string"  />
		<shortdesc lang="en">The lab's fence socket (/var/tmp/storhaug-lab/PREFIX/fence.sock)</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0"/>
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="list-status" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
`
