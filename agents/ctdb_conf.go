package agents

// The CTDB agent's parameters: their validation, and what they make of
// CTDB's configuration: the keys of ctdb.conf and script.options it owns,
// its event scripts and the clustering block of smb.conf (written and
// restored by package ctdb).

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/ocf"
)

// setup is the configuration the parameters ask for.
func (c *ctdbRes) setup() *ctdb.Setup {
	r := c.r
	return &ctdb.Setup{
		Dir:         r.String("ctdb_config_dir"),
		DataDir:     c.sys.dataDir,
		Conf:        c.confSettings(),
		Options:     c.optionSettings(),
		Scripts:     c.scripts(),
		ManageSamba: r.Bool("ctdb_manages_samba"),
		SmbConf:     r.String("smb_conf"),
		Samba: ctdb.SambaSettings{
			Socket: c.socket, PassdbBackend: r.String("smb_passdb_backend"), IdmapBackend: r.String("smb_idmap_backend"),
			PrivateDir: r.String("smb_private_dir"), FileidAlgorithm: r.String("smb_fileid_algorithm"),
		},
		Warn: func(err error) { r.Log.Warnf("%v", err) },
	}
}

// logLevel maps the shell agent's numeric debug level to ctdb.conf's names.
func logLevel(n int) string {
	switch {
	case n <= 0:
		return "ERROR"
	case n == 1:
		return "WARNING"
	case n == 2:
		return "NOTICE"
	case n == 3:
		return "INFO"
	}
	return "DEBUG"
}

// confSettings are the ctdb.conf keys the agent owns.
func (c *ctdbRes) confSettings() []ctdb.Setting {
	r := c.r
	loc := "file:" + r.String("ctdb_logfile")
	if r.String("ctdb_logfile") == "syslog" {
		loc = "syslog"
	}
	db := r.String("ctdb_dbdir")
	sec, key := c.tool.Naming.LockKey()
	lock := ctdb.Setting{Section: sec, Key: key, Value: r.String("ctdb_recovery_lock")}
	if lock.Value == "" {
		lock.Remove = true
	}
	set := []ctdb.Setting{
		{Section: "logging", Key: "location", Value: loc},
		{Section: "logging", Key: "log level", Value: logLevel(r.Int("ctdb_debuglevel"))},
		lock,
		{Section: "database", Key: "volatile database directory", Value: filepath.Join(db, "volatile")},
		{Section: "database", Key: "persistent database directory", Value: filepath.Join(db, "persistent")},
		{Section: "database", Key: "state database directory", Value: filepath.Join(db, "state")},
		{Section: "legacy", Key: "start as disabled", Value: strconv.FormatBool(r.Bool("ctdb_start_as_disabled"))},
	}
	if c.tool.Naming.Leader { // the other naming of the lock must not linger
		set = append(set, ctdb.Setting{Section: "cluster", Key: "recovery lock", Remove: true})
	}
	csec, ckey := c.tool.Naming.CapabilityKey()
	if c.promotable {
		// Nobody may lead until Pacemaker promotes an instance.
		set = append(set, ctdb.Setting{Section: csec, Key: ckey, Value: "false"})
	} else {
		set = append(set, ctdb.Setting{Section: csec, Key: ckey, Remove: true})
	}
	return set
}

// optionSettings are the script.options variables the agent owns.
func (c *ctdbRes) optionSettings() []ctdb.Setting {
	r := c.r
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	s := []ctdb.Setting{{Key: "CTDB_SAMBA_SKIP_SHARE_CHECK", Value: yn(r.Bool("ctdb_samba_skip_share_check"))}}
	for _, p := range [][2]string{{"ctdb_service_smb", "CTDB_SERVICE_SMB"}, {"ctdb_service_nmb", "CTDB_SERVICE_NMB"}, {"ctdb_service_winbind", "CTDB_SERVICE_WINBIND"}} {
		if v := r.String(p[0]); v != "" {
			s = append(s, ctdb.Setting{Key: p[1], Value: v})
		}
	}
	return s
}

func (c *ctdbRes) scripts() map[string]bool {
	dir := c.r.String("ctdb_config_dir")
	_, pa := os.Stat(filepath.Join(dir, "public_addresses"))
	_, sr := os.Stat(filepath.Join(dir, "static-routes"))
	return map[string]bool{
		"00.ctdb":      true,
		"10.interface": pa == nil,
		"11.routing":   sr == nil,
		"49.winbind":   c.r.Bool("ctdb_manages_winbind"),
		"50.samba":     c.r.Bool("ctdb_manages_samba"),
	}
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// validate checks the parameters and this node's setup.
func (c *ctdbRes) validate() error {
	r := c.r
	for _, p := range []string{"ctdb_binary", "ctdbd_binary"} {
		if err := executable(r.String(p)); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter %s: %w", p, err)
		}
	}
	if r.Int("ctdb_timeout") <= 0 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_timeout: must be at least 1 (seconds), not %d", r.Int("ctdb_timeout"))
	}
	if lvl := r.Int("ctdb_debuglevel"); lvl < 0 || lvl > 10 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_debuglevel: %d is not a level from 0 to 10", lvl)
	}
	if n := r.Int("ctdb_max_open_files"); r.IsSet("ctdb_max_open_files") && n < 64 {
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_max_open_files: %d is too small", n)
	}
	dir := r.String("ctdb_config_dir")
	if dir != "/etc/ctdb" {
		r.Log.Warnf("parameter ctdb_config_dir: CTDB 4.9 and later read %s only if it is their built-in directory (/etc/ctdb)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes")); err != nil {
		return ocf.Errorf(ocf.ErrArgs, "parameter ctdb_config_dir: %s does not exist: ctdb needs the list of nodes", filepath.Join(dir, "nodes"))
	}
	if _, err := os.Stat(filepath.Join(dir, "public_addresses")); err == nil {
		r.Log.Warnf("%s exists: CTDB will manage IP addresses itself", filepath.Join(dir, "public_addresses"))
	}
	if err := executable(r.String("tdbdump_binary")); err != nil {
		return ocf.Errorf(ocf.ErrInstalled, "parameter tdbdump_binary: %w (needed to check persistent databases)", err)
	}
	lock := r.String("ctdb_recovery_lock")
	switch {
	case lock == "" && !c.promotable:
		return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_recovery_lock is required for a plain clone (or make the resource a promotable clone, where Pacemaker picks the leader)")
	case strings.HasPrefix(lock, "!"):
		helper := strings.Fields(lock[1:])
		if len(helper) == 0 {
			return ocf.Errorf(ocf.ErrConfigured, "parameter ctdb_recovery_lock: %q names no lock helper", lock)
		}
		if err := executable(helper[0]); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter ctdb_recovery_lock: lock helper: %w", err)
		}
	case lock != "":
		d := filepath.Dir(lock)
		f, err := os.CreateTemp(d, ".storhaug-ctdb-lock-test-*")
		if err != nil {
			return ocf.Errorf(ocf.ErrArgs, "parameter ctdb_recovery_lock: the lock's directory %s does not exist or is not writable: %w", d, err)
		}
		f.Close()
		os.Remove(f.Name())
	}
	if r.Bool("ctdb_manages_samba") {
		if _, err := os.Stat(r.String("smb_conf")); err != nil {
			return ocf.Errorf(ocf.ErrInstalled, "parameter smb_conf: %s does not exist (ctdb_manages_samba is set)", r.String("smb_conf"))
		}
	}
	return nil
}

func (c *ctdbRes) modeText() string {
	if c.promotable {
		s := "promotable clone: Pacemaker picks the CTDB leader (the promoted instance)"
		if l := c.r.String("ctdb_recovery_lock"); l != "" {
			s += ", with cluster lock " + l
		}
		return s
	}
	return "clone with cluster lock " + c.r.String("ctdb_recovery_lock") + ": CTDB elects its leader"
}
