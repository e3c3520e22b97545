package lab

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// privateVarDirs are bind-mounted, per node, from <node dir>/var/<dir>;
// they start as empty copies of the host's directory tree (owners, modes).
var privateVarDirs = []string{"lib/pacemaker", "lib/corosync", "lib/ctdb", "lib/samba", "cache/samba"}

// Paths on the shared storage (relative to SharedDir).
const (
	SharedCTDB   = "ctdb"        // holds the CTDB cluster lock file "reclock"
	SharedExport = "export"      // exported by ganesha as /export
	SharedSMB    = "smb"         // the SMB share "share"
	SharedNFS    = "nfs-ganesha" // <node>/ is that node's /var/lib/nfs
)

// Fixed paths inside every node.
const (
	CorosyncConf = "/etc/corosync/corosync.conf"
	CTDBConf     = "/etc/ctdb/ctdb.conf"
	CTDBNodes    = "/etc/ctdb/nodes"
	SmbConf      = "/etc/samba/smb.conf"
	GaneshaConf  = "/etc/ganesha/ganesha.conf"
	GaneshaPort  = 2049
	SMBPort      = 445
	ShareName    = "share"
	ExportPseudo = "/export"
)

// ClusterLock is the CTDB cluster lock file (on the shared storage).
func (l *Lab) ClusterLock() string { return filepath.Join(l.SharedDir(), SharedCTDB, "reclock") }

// ExportDir is the shared directory ganesha exports as /export.
func (l *Lab) ExportDir() string { return filepath.Join(l.SharedDir(), SharedExport) }

// ShareDir is the shared directory smbd shares as "share".
func (l *Lab) ShareDir() string { return filepath.Join(l.SharedDir(), SharedSMB) }

func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, perm)
}

func lookupIDs(usr, grp string) (int, int) {
	uid, gid := 0, 0
	if u, err := user.Lookup(usr); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if grp != "" {
		if g, err := user.LookupGroup(grp); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid
}

// runDirs are made on each node's fresh tmpfs /run by its init.
func runDirs() []dirSpec {
	hu, hg := lookupIDs("hacluster", "haclient")
	return []dirSpec{
		{Path: "/run/lock", Mode: 0o1777},
		{Path: "/run/dbus", Mode: 0o755},
		{Path: "/run/ctdb", Mode: 0o755},
		{Path: "/run/samba", Mode: 0o755},
		{Path: "/run/ganesha", Mode: 0o755},
		{Path: "/run/crm", Mode: 0o750, UID: hu, GID: hg},
		{Path: "/run/pacemaker", Mode: 0o750, UID: hu, GID: hg},
		{Path: "/run/resource-agents", Mode: 0o1755},
	}
}

// mirrorDirs makes dst a copy of src's directory tree: directories only,
// with their modes and owners, no files.
func mirrorDirs(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src {
				return os.MkdirAll(dst, 0o755)
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		os.Chmod(target, info.Mode().Perm()|info.Mode()&(fs.ModeSticky|fs.ModeSetgid))
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			os.Lchown(target, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

// storhaugDirs are the lab's directories the nodes see (through read-only
// overlays) on top of /usr/lib/ocf/resource.d and /usr/sbin: the .deb's
// files extracted into <root>/pkg, or a plain binary's copy and links.
func (l *Lab) storhaugDirs() (ocf, sbin string) {
	if isDeb(l.opts.Storhaug) {
		pkg := filepath.Join(l.root, "pkg")
		return filepath.Join(pkg, "usr", "lib", "ocf", "resource.d"), filepath.Join(pkg, "usr", "sbin")
	}
	return filepath.Join(l.root, "ocf"), filepath.Join(l.root, "sbin")
}

func isDeb(path string) bool { return strings.HasSuffix(path, ".deb") }

// installStorhaug puts storhaug where the nodes will see it as
// /usr/sbin/storhaug and /usr/lib/ocf/resource.d/storhaug: a .deb is
// extracted as dpkg would install it (the nodes share the host's /usr and
// dpkg database, so it cannot be installed for them with dpkg -i); a plain
// binary is copied and linked as storhaug install would.
func (l *Lab) installStorhaug() error {
	if l.opts.Storhaug == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if isDeb(l.opts.Storhaug) {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "--extract", l.opts.Storhaug, filepath.Join(l.root, "pkg")).CombinedOutput(); err != nil {
			return fmt.Errorf("lab: dpkg-deb --extract %s: %v: %s", l.opts.Storhaug, err, out)
		}
		ocf, sbin := l.storhaugDirs()
		for _, p := range []string{filepath.Join(sbin, "storhaug"), filepath.Join(ocf, "storhaug")} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("lab: %s: %w", l.opts.Storhaug, err)
			}
		}
		// The lab's own binaries' layer under the package's (see initSpec).
		return os.MkdirAll(filepath.Join(l.root, "sbin"), 0o755)
	}
	b, err := os.ReadFile(l.opts.Storhaug)
	if err != nil {
		return err
	}
	bin := filepath.Join(l.root, "sbin", "storhaug")
	if err := writeFile(bin, b, 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, "agents").Output()
	if err != nil {
		return fmt.Errorf("lab: %s agents: %w", l.opts.Storhaug, err)
	}
	dir := filepath.Join(l.root, "ocf", "storhaug")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range strings.Fields(string(out)) {
		if strings.ContainsAny(name, "/.") {
			continue
		}
		if err := os.Symlink("/usr/sbin/storhaug", filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Agents are the agent names the lab installed as ocf:storhaug:*.
func (l *Lab) Agents() []string {
	ocf, _ := l.storhaugDirs()
	ents, _ := os.ReadDir(filepath.Join(ocf, "storhaug"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// writeConfigs makes the shared directory and every node's private
// directories and configuration files (the node's /etc overlay's upper
// layer), before the nodes boot.
func (l *Lab) writeConfigs() error {
	sh := l.SharedDir()
	for _, d := range []string{SharedCTDB, SharedExport, SharedSMB, SharedNFS} {
		if err := os.MkdirAll(filepath.Join(sh, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(sh, SharedExport), 0o777)
	os.Chmod(filepath.Join(sh, SharedSMB), 0o777)
	for _, n := range l.nodes {
		d := n.Dir()
		for _, sub := range []string{"etc", ".etc-work"} {
			if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
				return err
			}
		}
		for _, v := range privateVarDirs {
			if err := mirrorDirs(filepath.Join("/var", v), filepath.Join(d, "var", v)); err != nil {
				return err
			}
		}
		if err := mirrorDirs("/var/log", n.LogDir()); err != nil {
			return err
		}
		if err := mirrorDirs("/var/lib/nfs", n.nfsStateDir()); err != nil {
			return err
		}
		for _, sub := range []string{"ganesha", "lab"} {
			p := filepath.Join(n.nfsStateDir(), sub)
			if sub == "lab" {
				p = filepath.Join(n.LogDir(), sub)
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		}
		for _, sub := range []string{"corosync", "ctdb", "samba", "ganesha"} {
			os.MkdirAll(filepath.Join(n.LogDir(), sub), 0o755)
		}
		for rel, content := range l.etcFiles(n) {
			if err := writeFile(filepath.Join(d, "etc", rel), []byte(content), 0o644); err != nil {
				return err
			}
		}
		if l.opts.Pacemaker != Off {
			hu, hg := lookupIDs("hacluster", "haclient")
			cib := filepath.Join(d, "var", "lib/pacemaker/cib/cib.xml")
			if err := writeFile(cib, []byte(l.seedCIB()), 0o600); err != nil {
				return err
			}
			os.Chown(cib, hu, hg)
		}
	}
	return nil
}

// etcFiles are the files the lab writes into a node's /etc (relative).
func (l *Lab) etcFiles(n *Node) map[string]string {
	files := map[string]string{
		"hostname": n.name + "\n",
		"hosts":    l.hostsFile(),
	}
	if l.opts.Pacemaker != Off {
		files["corosync/corosync.conf"] = l.corosyncConf()
	}
	if l.opts.CTDB != Off {
		files["ctdb/ctdb.conf"] = l.ctdbConf()
		files["ctdb/nodes"] = l.ctdbNodes()
	}
	if l.opts.Samba != Off {
		files["samba/smb.conf"] = l.smbConf()
	}
	if l.opts.Ganesha != Off {
		files["ganesha/ganesha.conf"] = l.ganeshaConf()
	}
	return files
}

func (l *Lab) hostsFile() string {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, n := range l.nodes {
		fmt.Fprintf(&b, "%s\t%s\n%s\t%s\n", n.addr4, n.name, n.addr6, n.name)
	}
	for _, c := range l.clients {
		fmt.Fprintf(&b, "%s\t%s\n", c.addr4, c.name)
	}
	return b.String()
}

func (l *Lab) corosyncConf() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by the storhaug lab (%s).
totem {
	version: 2
	cluster_name: %s
	transport: knet
	crypto_cipher: none
	crypto_hash: none
	# A short token, as storhaug's README recommends for a dedicated
	# cluster network (corosync's default: 3000 ms, plus 650 ms per node
	# above two): a lost node is declared lost about token + consensus
	# (1.2 x token) after it stops.
	token: %d
	token_coefficient: 0
}

nodelist {
`, l.opts.Prefix, l.opts.Prefix, l.opts.TokenMS)
	for _, n := range l.nodes {
		fmt.Fprintf(&b, "\tnode {\n\t\tring0_addr: %s\n\t\tname: %s\n\t\tnodeid: %d\n\t}\n", ClusterAddr4(n.index), n.name, n.index)
	}
	b.WriteString("}\n\nquorum {\n\tprovider: corosync_votequorum\n")
	if len(l.nodes) == 2 {
		b.WriteString("\ttwo_node: 1\n")
	}
	b.WriteString(`}

logging {
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: no
	to_stderr: no
	timestamp: on
}
`)
	return b.String()
}

// SeedProperties are the cluster properties of the seeded CIB (crm_config);
// ResetCIB restores them.
func (l *Lab) SeedProperties() [][2]string {
	return [][2]string{
		// Fencing on, as production must have it, with the lab's fence
		// device (stonith:fence_storhaug_lab, resource lab-fence).
		{"stonith-enabled", "true"},
		// A fenced node stays powered off until a test (or a person)
		// brings it back with Recover, as an admin looks at a fenced
		// machine first: tests see the state a crash left. The device
		// reboots too (stonith_admin --reboot).
		{"stonith-action", "off"},
		// The lab's device answers in about a second; a fencing that
		// does not is a failure to see, not to wait a minute for.
		{"stonith-timeout", "20s"},
		// A DC is elected in seconds rather than after the default 20 s.
		{"dc-deadtime", "2s"},
		{"cluster-recheck-interval", "1min"},
		// LAB ONLY: several labs share a small machine; do not let
		// Pacemaker throttle its actions because of the load they make.
		{"load-threshold", "1000%"},
		{"cluster-name", l.opts.Prefix},
	}
}

func (l *Lab) crmConfigXML() string {
	var b bytes.Buffer
	b.WriteString(`<crm_config><cluster_property_set id="cib-bootstrap-options">`)
	for _, p := range l.SeedProperties() {
		fmt.Fprintf(&b, `<nvpair id="cib-bootstrap-options-%s" name="%s" value="%s"/>`, p[0], p[0], p[1])
	}
	b.WriteString(`</cluster_property_set></crm_config>`)
	return b.String()
}

func (l *Lab) seedCIB() string {
	var nodes bytes.Buffer
	for _, n := range l.nodes {
		fmt.Fprintf(&nodes, `<node id="%d" uname="%s"/>`, n.index, n.name)
	}
	return fmt.Sprintf(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <!-- Seeded by the storhaug lab: fencing through the lab's fence device (resource %s). -->
  <configuration>
    %s
    <nodes>%s</nodes>
    <resources>%s</resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
`, FenceResource, l.crmConfigXML(), nodes.String(), l.fenceXML())
}

func (l *Lab) ctdbConf() string {
	return fmt.Sprintf(`# Written by the storhaug lab (%s).
[logging]
	location = file:/var/log/ctdb/log.ctdb
	log level = NOTICE

[cluster]
	# On the shared storage: every node sees it at the same path.
	cluster lock = %s
`, l.opts.Prefix, l.ClusterLock())
}

func (l *Lab) ctdbNodes() string {
	var b bytes.Buffer
	for _, n := range l.nodes {
		b.WriteString(n.addr4 + "\n")
	}
	return b.String()
}

func (l *Lab) smbConf() string {
	return fmt.Sprintf(`# Written by the storhaug lab (%s).
[global]
	clustering = yes
	netbios name = %s
	workgroup = LAB
	server role = standalone server
	security = user
	map to guest = Bad User
	guest account = nobody
	passdb backend = tdbsam
	idmap config * : backend = tdb2
	idmap config * : range = 1000000-1999999
	logging = file
	log file = /var/log/samba/log.%%m
	max log size = 10000
	log level = 1
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
	disable netbios = yes
	smb ports = %d

[%s]
	path = %s
	read only = no
	guest ok = yes
	force user = root
	# An HA share: SMB3 durable handles (a client's open files and
	# byte-range locks survive its address moving to another node) need
	# posix locking = no, kernel oplocks = no and kernel share modes = no
	# (the last two are the defaults). Without them the locks are lost,
	# unannounced, on a graceful move. Not for files that NFS clients or
	# local processes lock too: they no longer see the SMB locks.
	posix locking = no
`, l.opts.Prefix, strings.ToUpper(l.opts.Prefix), SMBPort, ShareName, l.ShareDir())
}

func (l *Lab) ganeshaConf() string {
	nlm, protos, pseudo := "false", "4", "false"
	if l.opts.NFSv3 {
		// NFSv3 clients mount the pseudo path too (/export).
		nlm, protos, pseudo = "true", "3, 4", "true"
	}
	return fmt.Sprintf(`# Written by the storhaug lab (%s).
NFS_CORE_PARAM {
	Enable_NLM = %s;
	Enable_RQUOTA = false;
	# Client records directly in v4recov, as takeovers read them (storhaug's
	# ganesha agent checks it).
	Clustered = false;
	Mount_Path_Pseudo = %s;
	Protocols = %s;
	NFS_Port = %d;
}

NFS_KRB5 {
	Active_krb5 = false;
}

NFSv4 {
	# State on the shared storage: /var/lib/nfs is <shared>/nfs-ganesha/<node>.
	RecoveryBackend = fs;
	RecoveryRoot = /var/lib/nfs/ganesha;
	# One server scope on every node, the cluster's name (storhaug's
	# ganesha agent checks it): clients reclaim after an address moves.
	Server_Scope = "%s";
	# LAB ONLY: short lease and grace. An NFSv4-only failover lifts grace
	# early without them (every taken-over client reclaimed, at the next
	# reaper run, every Lease_Lifetime/2 s), but tests plant client records
	# that never reclaim, and with NFSv3 (NLM on) grace always lasts
	# Grace_Period.
	Lease_Lifetime = 10;
	Grace_Period = 20;
}

EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = %s;
	Access_Type = RW;
	Squash = No_Root_Squash;
	Protocols = %s;
	Transports = TCP;
	SecType = sys;
	FSAL {
		Name = VFS;
	}
}
`, l.opts.Prefix, nlm, pseudo, protos, GaneshaPort, l.opts.Prefix, l.ExportDir(), ExportPseudo, protos) + ganeshaLogConf(os.Getenv(GaneshaDebugEnv))
}

// GaneshaDebugEnv names ganesha log components (comma-separated, such as
// CLIENTID,STATE,NFS4_LOCK) that the lab's ganesha logs at FULL_DEBUG, to
// look into a failover's state handling; unset, ganesha's defaults.
const GaneshaDebugEnv = "STORHAUG_LAB_GANESHA_DEBUG"

// ganeshaLogConf is the LOG block raising the components in list.
func ganeshaLogConf(list string) string {
	var b strings.Builder
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			fmt.Fprintf(&b, "\t\t%s = FULL_DEBUG;\n", c)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nLOG {\n\tCOMPONENTS {\n" + b.String() + "\t}\n}\n"
}
