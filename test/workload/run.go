package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one line of the run's log. Start and End are Unix ns: when the
// operation began and when it returned.
type Event struct {
	Ev    string `json:"ev"` // ack, io, newopen, lock, error, start, stop
	Op    string `json:"op,omitempty"`
	File  string `json:"file,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Err   string `json:"err,omitempty"`
}

// Events of the log.
const (
	EvAck     = "ack"     // a record written and fsync'd (File, Seq)
	EvIO      = "io"      // a write + fsync into the locked range of the held lock's file
	EvNewOpen = "newopen" // a new file created, locked, written, fsync'd, closed
	EvLock    = "lock"    // the long-held lock taken
	EvError   = "error"   // Op failed with Err
	EvStart   = "start"
	EvStop    = "stop"
)

// Files in the run's directory.
const (
	DataFile = "data"
	LockFile = "lock"
)

// Log writes events as JSON lines, one write each.
type Log struct {
	mu sync.Mutex
	w  io.Writer
}

func NewLog(w io.Writer) *Log { return &Log{w: w} }

func (l *Log) Add(e Event) {
	b, _ := json.Marshal(e)
	l.mu.Lock()
	l.w.Write(append(b, '\n'))
	l.mu.Unlock()
}

// Workload is one run on one mount.
type Workload struct {
	Dir      string
	Log      *Log
	Interval time.Duration
	Stop     func() bool
}

// Summary is what run prints when it stops.
type Summary struct {
	Acked, Errors, NewOpens int
	LockErrors              int
}

func now() int64 { return time.Now().UnixNano() }

func (w *Workload) fail(op, file string, start int64, err error) {
	w.Log.Add(Event{Ev: EvError, Op: op, File: file, Start: start, End: now(), Err: err.Error()})
}

// writeRecord writes the record seq at its place in f, fsyncs, and reads it
// back.
func writeRecord(f *os.File, off int64, seq uint64) (string, error) {
	rec := Encode(seq, now())
	if _, err := f.WriteAt(rec, off); err != nil {
		return "write", err
	}
	if err := f.Sync(); err != nil {
		return "fsync", err
	}
	back := make([]byte, RecordSize)
	if _, err := f.ReadAt(back, off); err != nil {
		return "readback", err
	}
	if err := Decode(back, seq); err != nil {
		return "readback", err
	}
	return "", nil
}

func setLock(f *os.File, typ int16, wait bool) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 1}
	cmd := unix.F_SETLK
	if wait {
		cmd = unix.F_SETLKW
	}
	return unix.FcntlFlock(f.Fd(), cmd, &lk)
}

// Run runs until Stop says so.
func (w *Workload) Run() (Summary, error) {
	var sum Summary
	var mu sync.Mutex
	count := func(fn func(*Summary)) { mu.Lock(); fn(&sum); mu.Unlock() }
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return sum, err
	}
	data, err := os.OpenFile(filepath.Join(w.Dir, DataFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return sum, err
	}
	defer data.Close()
	lock, err := os.OpenFile(filepath.Join(w.Dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return sum, err
	}
	defer lock.Close()
	t0 := now()
	if err := setLock(lock, unix.F_WRLCK, true); err != nil {
		return sum, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	w.Log.Add(Event{Ev: EvLock, File: LockFile, Start: t0, End: now()})
	w.Log.Add(Event{Ev: EvStart, Start: now(), End: now()})

	done := make(chan struct{})
	var wg sync.WaitGroup
	// The records.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); ; seq++ {
			select {
			case <-done:
				return
			default:
			}
			start := now()
			if op, err := writeRecord(data, int64(seq-1)*RecordSize, seq); err != nil {
				w.fail(op, DataFile, start, err)
				count(func(s *Summary) { s.Errors++ })
			} else {
				w.Log.Add(Event{Ev: EvAck, File: DataFile, Seq: seq, Start: start, End: now()})
				count(func(s *Summary) { s.Acked++ })
			}
			time.Sleep(w.Interval)
		}
	}()
	// The held lock: write into its range once a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			start := now()
			_, err := lock.WriteAt([]byte{'L'}, 0)
			if err == nil {
				err = lock.Sync()
			}
			if err != nil {
				w.fail("lockio", LockFile, start, err)
				count(func(s *Summary) { s.LockErrors++; s.Errors++ })
				continue
			}
			w.Log.Add(Event{Ev: EvIO, File: LockFile, Start: start, End: now()})
		}
	}()
	// New files and new locks, about once a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := uint64(1); ; k++ {
			select {
			case <-done:
				return
			default:
			}
			start := now()
			name := fmt.Sprintf("new-%06d", k)
			if op, err := w.newOpen(name, k); err != nil {
				w.fail(op, name, start, err)
				count(func(s *Summary) { s.Errors++ })
			} else {
				end := now()
				w.Log.Add(Event{Ev: EvAck, File: name, Seq: k, Start: start, End: end})
				w.Log.Add(Event{Ev: EvNewOpen, File: name, Seq: k, Start: start, End: end})
				count(func(s *Summary) { s.NewOpens++ })
			}
			if d := time.Until(time.Unix(0, start).Add(time.Second)); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	for !w.Stop() {
		time.Sleep(100 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	setLock(lock, unix.F_UNLCK, false)
	w.Log.Add(Event{Ev: EvStop, Start: now(), End: now()})
	return sum, nil
}

func (w *Workload) newOpen(name string, k uint64) (string, error) {
	f, err := os.OpenFile(filepath.Join(w.Dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "open", err
	}
	defer f.Close()
	if err := setLock(f, unix.F_WRLCK, false); err != nil {
		return "newlock", err
	}
	if op, err := writeRecord(f, 0, k); err != nil {
		return op, err
	}
	if err := setLock(f, unix.F_UNLCK, false); err != nil {
		return "unlock", err
	}
	if err := f.Close(); err != nil {
		return "close", err
	}
	return "", nil
}

// ProbeLock tries to take the held lock's range on file without waiting:
// "denied" when someone holds it, "granted" when it was free (then it is
// released again).
func ProbeLock(file string) (string, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	err = setLock(f, unix.F_WRLCK, false)
	switch err {
	case nil:
		setLock(f, unix.F_UNLCK, false)
		return "granted", nil
	case unix.EAGAIN, unix.EACCES:
		return "denied", nil
	}
	return "", err
}
