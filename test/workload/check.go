package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Lock outcomes of a Report.
const (
	LockKept         = "kept"          // the lock was still held (a conflicting probe was denied)
	LockReportedLost = "reported-lost" // the application was told (an error on the lock or its file)
	LockSilentlyLost = "silently-lost" // a conflicting lock was granted and the application was never told
	LockUnknown      = "unknown"       // not probed
)

// Report is check's verdict on one run.
type Report struct {
	Proto   string `json:"proto"`
	Acked   int    `json:"acked"`
	Lost    int    `json:"lost"`
	Corrupt int    `json:"corrupt"`
	// Outages from the fault (seconds; -1: no success after the fault): until
	// the first successful I/O begun after the fault on an already open
	// file, and until the first successful new open + lock begun after it.
	OutageS  float64  `json:"outage_s"`
	NewOpenS float64  `json:"newopen_s"`
	Locks    string   `json:"locks"`
	Errors   int      `json:"errors"`
	Stalls   int      `json:"stalls"` // operations that took longer than StallAfter
	MaxOpS   float64  `json:"max_op_s"`
	Problems []string `json:"problems,omitempty"` // the first lost/corrupt records and errors
}

// StallAfter: an operation taking longer is a stall.
const StallAfter = 1e9

// ReadAt reads a file's bytes at an offset (the fresh mount).
type ReadAt func(file string, off int64, n int) ([]byte, error)

// DirReader reads files under dir.
func DirReader(dir string) ReadAt {
	return func(file string, off int64, n int) ([]byte, error) {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, n)
		m, err := f.ReadAt(b, off)
		if err == io.EOF {
			err = nil
		}
		return b[:m], err
	}
}

// ParseLog reads a run's log. A last line cut short (the run was killed
// mid-write) is ignored; any other bad line is an error.
func ParseLog(b []byte) ([]Event, error) {
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			if !bytes.HasSuffix(b, []byte("\n")) && bytes.HasSuffix(b, line) {
				break
			}
			return nil, fmt.Errorf("log line %d: %v", n, err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// Check judges a run: every acknowledged record must read back intact
// through read; outages are measured from fault (Unix ns; 0: none); probe is
// the result of a conflicting lock attempt made while the run held its lock.
func Check(evs []Event, read ReadAt, fault int64, probe string) Report {
	r := Report{OutageS: -1, NewOpenS: -1}
	problem := func(format string, args ...any) {
		if len(r.Problems) < 20 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	firstIO, firstNew := int64(-1), int64(-1)
	told := false
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].End < evs[j].End })
	for _, e := range evs {
		if d := e.End - e.Start; e.Ev != EvStart && e.Ev != EvStop {
			if d > StallAfter {
				r.Stalls++
			}
			if s := float64(d) / 1e9; s > r.MaxOpS {
				r.MaxOpS = s
			}
		}
		switch e.Ev {
		case EvAck:
			r.Acked++
			off := int64(0)
			if e.File == DataFile {
				off = int64(e.Seq-1) * RecordSize
			}
			b, err := read(e.File, off, RecordSize)
			if err == nil {
				err = Decode(b, e.Seq)
			} else if errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%w: %v", ErrLost, err)
			}
			switch {
			case err == nil:
			case errors.Is(err, ErrCorrupt):
				r.Corrupt++
				problem("%s record %d: %v", e.File, e.Seq, err)
			default:
				r.Lost++
				problem("%s record %d: %v", e.File, e.Seq, err)
			}
			if e.File == DataFile && e.Start >= fault && firstIO < 0 {
				firstIO = e.End
			}
		case EvIO:
			if e.Start >= fault && firstIO < 0 {
				firstIO = e.End
			}
		case EvNewOpen:
			if e.Start >= fault && firstNew < 0 {
				firstNew = e.End
			}
		case EvError:
			r.Errors++
			problem("%s %s: %s", e.Op, e.File, e.Err)
			if e.File == LockFile {
				told = true
			}
		}
	}
	if firstIO >= 0 {
		r.OutageS = float64(firstIO-fault) / 1e9
	}
	if firstNew >= 0 {
		r.NewOpenS = float64(firstNew-fault) / 1e9
	}
	switch {
	case told:
		r.Locks = LockReportedLost
	case probe == "denied":
		r.Locks = LockKept
	case probe == "granted":
		r.Locks = LockSilentlyLost
	default:
		r.Locks = LockUnknown
	}
	if fault == 0 {
		r.OutageS, r.NewOpenS = 0, 0
	}
	return r
}
