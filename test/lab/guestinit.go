package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The guest side of a kernel client (see guest.go). guestInit is PID 1 of
// the guest kernel; it starts the agent (this program once more, with
// guestAgentEnv) as a child and reaps orphans; when the agent ends, the
// guest powers off.

func init() {
	if os.Getpid() == 1 {
		if spec := os.Getenv(guestEnv); spec != "" {
			os.Exit(guestInit(spec))
		}
	}
	if port := os.Getenv(guestAgentEnv); port != "" {
		os.Exit(guestAgent(port))
	}
}

// GuestLabDir is where the guest sees its own directory of the lab (the
// host's <root>/guests/kN, read-write).
const GuestLabDir = "/run/lab"

func guestInit(specPath string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "lab guest init: %v\n", err)
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		return 1
	}
	os.Setenv("PATH", strings.TrimPrefix(baseEnv[0], "PATH="))
	b, err := os.ReadFile(specPath)
	if err != nil {
		return fail(err)
	}
	var spec guestSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fail(err)
	}
	// The root is the host's file system, read-only; everything the guest
	// writes goes to its own tmpfs, except GuestLabDir.
	mounts := []mountSpec{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/var/lib/nfs", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
			return fail(fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err))
		}
	}
	// The guest kernel mounts devtmpfs on /dev itself (DEVTMPFS_MOUNT);
	// if it did not, the host's device nodes would do, read through hostfs.
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, ""); err != nil && err != unix.EBUSY {
		return fail(fmt.Errorf("mount devtmpfs on /dev: %w", err))
	}
	os.MkdirAll("/dev/pts", 0o755)
	unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "")
	if err := os.MkdirAll(GuestLabDir, 0o755); err != nil {
		return fail(err)
	}
	if err := unix.Mount("none", GuestLabDir, "hostfs", 0, spec.Dir); err != nil {
		return fail(fmt.Errorf("mount hostfs %s on %s: %w", spec.Dir, GuestLabDir, err))
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fail(err)
	}
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(spec.Modprobe+"\n"), 0o644); err != nil {
		return fail(err)
	}
	run := func(argv ...string) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = baseEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	// Its own NFSv4 client identity: the guests share the host's files,
	// /etc/machine-id included.
	if err := run(spec.Modprobe, "nfs", "nfs4_unique_id="+spec.UniqueID); err != nil {
		return fail(err)
	}
	for _, m := range []string{"ipv6", "nfsv3", "nfsv4", "cifs"} {
		if err := run(spec.Modprobe, m); err != nil {
			return fail(err)
		}
	}
	if err := guestNetwork(spec); err != nil {
		return fail(err)
	}
	// statd's state (NFSv3 locks) on the guest's tmpfs /var/lib/nfs.
	uid, gid := lookupIDs("statd", "nogroup")
	for _, d := range []string{"/var/lib/nfs/sm", "/var/lib/nfs/sm.bak"} {
		os.MkdirAll(d, 0o700)
		os.Chown(d, uid, gid)
	}
	os.WriteFile("/var/lib/nfs/state", nil, 0o644)
	os.Chown("/var/lib/nfs/state", uid, gid)
	if err := run("rpcbind"); err != nil {
		return fail(err)
	}
	if err := run("rpc.statd"); err != nil {
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	agent := exec.Command(self)
	agent.Args = []string{"storhaug-lab-guest-agent"}
	agent.Env = append(append([]string(nil), baseEnv...), guestAgentEnv+"="+strconv.Itoa(spec.Port))
	agent.Stdout, agent.Stderr = os.Stdout, os.Stderr
	agent.Dir = "/"
	if err := agent.Start(); err != nil {
		return fail(err)
	}
	up, _ := os.ReadFile("/proc/uptime")
	fmt.Fprintf(os.Stderr, "lab guest %s: up, agent on port %d (uptime %s s)\n", spec.Hostname, spec.Port, strings.Fields(string(up) + " ?")[0])
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid == agent.Process.Pid {
				fmt.Fprintf(os.Stderr, "lab guest %s: agent ended (%v): power off\n", spec.Hostname, ws)
				unix.Sync()
				unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
			}
		}
		<-sigs
	}
}

func guestNetwork(spec guestSpec) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	var link netlink.Link
	deadline := time.Now().Add(10 * time.Second)
	for {
		link, err = netlink.LinkByName("vec0")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the device appears during boot
	}
	if err != nil {
		return fmt.Errorf("vec0: %w", err)
	}
	for _, a := range []string{spec.Addr4, spec.Addr6} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if addr.IP.To4() == nil {
			addr.Flags |= unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	return netlink.LinkSetUp(link)
}

// guestAgent serves guestRequests on the port, one per connection. A
// command is killed (its whole process group) when the host closes the
// connection.
func guestAgent(port string) int {
	os.Setenv("PATH", strings.TrimPrefix(baseEnv[0], "PATH="))
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab guest agent: %v\n", err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "lab guest agent: %v\n", err)
			return 1
		}
		go serveGuest(c)
	}
}

func serveGuest(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	var req guestRequest
	if err := json.NewDecoder(br).Decode(&req); err != nil {
		return
	}
	enc := json.NewEncoder(c)
	if req.PowerOff {
		enc.Encode(guestResponse{})
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		return
	}
	if len(req.Argv) == 0 {
		enc.Encode(guestResponse{Code: -1, Err: "empty command"})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The host closing the connection (its ctx ended) cancels the command.
	go func() {
		buf := make([]byte, 1)
		c.Read(buf)
		cancel()
	}()
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(append([]string(nil), baseEnv...), req.Env...)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(req.Stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	resp := guestResponse{Stdout: stdout.String(), Stderr: stderr.String()}
	switch ee := err.(type) {
	case nil:
	case *exec.ExitError:
		resp.Code = ee.ExitCode()
		if !ee.Exited() {
			resp.Err = ee.Error()
		}
	default:
		resp.Code = -1
		resp.Err = err.Error()
	}
	enc.Encode(resp)
}

// guestPath is the host path of a file in the guest's GuestLabDir.
func (g *Guest) guestPath(rel string) string { return filepath.Join(g.Dir(), rel) }
