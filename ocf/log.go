package ocf

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"time"
)

// Logger writes messages in the shape resource-agents uses,
// "TYPE(instance)[pid]: LEVEL: message", to stderr (which Pacemaker keeps in
// its own log), to syslog with facility HA_LOGFACILITY (default daemon;
// "none" turns it off) and to HA_LOGFILE when set. Debug messages appear only
// with HA_debug set (to anything but 0) or OCF_TRACE_RA true, and also go to
// HA_DEBUGLOG.
// Nothing is opened until the first message: a quiet monitor costs nothing.
type Logger struct {
	mu       sync.Mutex
	tag      string // TYPE(instance)
	pid      int
	stderr   io.Writer
	facility string
	logfile  string
	debuglog string
	debug    bool
	sys      syslogWriter
	sysTried bool
}

func newLogger(agent, instance string, getenv func(string) string, stderr io.Writer) *Logger {
	tag := agent
	if instance != "" {
		tag += "(" + instance + ")"
	}
	facility := getenv("HA_LOGFACILITY")
	if facility == "" {
		facility = "daemon"
	}
	return &Logger{
		tag: tag, pid: os.Getpid(), stderr: stderr, facility: facility,
		logfile: getenv("HA_LOGFILE"), debuglog: getenv("HA_DEBUGLOG"), debug: debugOn(getenv),
	}
}

// debugOn reports whether debug messages are wanted: HA_debug set to
// anything but 0 (or another false word), as resource-agents reads it, or
// OCF_TRACE_RA true (ocf-tester -X).
func debugOn(getenv func(string) string) bool {
	if d := strings.TrimSpace(getenv("HA_debug")); d != "" {
		if b, err := ParseBool(d); err != nil || b {
			return true
		}
	}
	b, err := ParseBool(getenv("OCF_TRACE_RA"))
	return err == nil && b
}

// Debugf logs at debug level.
func (l *Logger) Debugf(format string, args ...any) { l.log(syslog.LOG_DEBUG, "DEBUG", format, args) }

// Infof logs at info level.
func (l *Logger) Infof(format string, args ...any) { l.log(syslog.LOG_INFO, "INFO", format, args) }

// Warnf logs at warning level.
func (l *Logger) Warnf(format string, args ...any) {
	l.log(syslog.LOG_WARNING, "WARNING", format, args)
}

// Errorf logs at error level.
func (l *Logger) Errorf(format string, args ...any) { l.log(syslog.LOG_ERR, "ERROR", format, args) }

func (l *Logger) log(prio syslog.Priority, level, format string, args []any) {
	if l == nil {
		return
	}
	if prio == syslog.LOG_DEBUG && !l.debug {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	line := fmt.Sprintf("%s[%d]: %s: %s\n", l.tag, l.pid, level, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stderr != nil {
		io.WriteString(l.stderr, line)
	}
	if w := l.syslog(); w != nil {
		body := level + ": " + msg
		switch prio {
		case syslog.LOG_DEBUG:
			w.Debug(body)
		case syslog.LOG_INFO:
			w.Info(body)
		case syslog.LOG_WARNING:
			w.Warning(body)
		default:
			w.Err(body)
		}
	}
	// The time stamp as resource-agents writes it (HA_DATEFMT "%b %d %T").
	stamped := time.Now().Format("Jan 02 15:04:05") + " " + line
	if l.logfile != "" {
		appendFile(l.logfile, stamped)
	}
	if prio == syslog.LOG_DEBUG && l.debuglog != "" && l.debuglog != l.logfile {
		appendFile(l.debuglog, stamped)
	}
}

// syslogWriter is the part of *syslog.Writer the logger uses.
type syslogWriter interface {
	Debug(string) error
	Info(string) error
	Warning(string) error
	Err(string) error
	Close() error
}

// dialSyslog connects to the local syslog; tests replace it.
var dialSyslog = func(p syslog.Priority, tag string) (syslogWriter, error) {
	return syslog.Dial("", "", p, tag)
}

func (l *Logger) syslog() syslogWriter {
	if l.sysTried || l.facility == "none" {
		return l.sys
	}
	l.sysTried = true
	fac, ok := facility(l.facility)
	if !ok {
		return nil
	}
	w, err := dialSyslog(fac|syslog.LOG_INFO, l.tag)
	if err == nil {
		l.sys = w
	}
	return l.sys
}

// Close releases the syslog connection, if one was opened.
func (l *Logger) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		l.sys.Close()
		l.sys = nil
	}
}

func appendFile(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}

// facility returns the syslog facility called name (as HA_LOGFACILITY
// names it). A switch rather than a map: nothing to build at start-up.
func facility(name string) (syslog.Priority, bool) {
	switch name {
	case "kern":
		return syslog.LOG_KERN, true
	case "user":
		return syslog.LOG_USER, true
	case "mail":
		return syslog.LOG_MAIL, true
	case "daemon":
		return syslog.LOG_DAEMON, true
	case "auth":
		return syslog.LOG_AUTH, true
	case "syslog":
		return syslog.LOG_SYSLOG, true
	case "lpr":
		return syslog.LOG_LPR, true
	case "news":
		return syslog.LOG_NEWS, true
	case "uucp":
		return syslog.LOG_UUCP, true
	case "cron":
		return syslog.LOG_CRON, true
	case "authpriv":
		return syslog.LOG_AUTHPRIV, true
	case "ftp":
		return syslog.LOG_FTP, true
	}
	if len(name) == 6 && name[:5] == "local" && name[5] >= '0' && name[5] <= '7' {
		return syslog.LOG_LOCAL0 + syslog.Priority(name[5]-'0')<<3, true
	}
	return 0, false
}
