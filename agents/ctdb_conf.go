package agents

// The CTDB agent's parameters as CTDB's configuration: the keys of
// ctdb.conf and script.options it owns, its event scripts and the
// clustering block of smb.conf (written and restored by package ctdb).

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/storhaug/storhaug/ctdb"
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
