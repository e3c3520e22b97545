package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, seq := range []uint64{1, 2, 255, 1 << 40} {
		if err := Decode(Encode(seq, 12345), seq); err != nil {
			t.Errorf("seq %d: %v", seq, err)
		}
	}
}

func TestRecordDamage(t *testing.T) {
	good := Encode(7, time.Now().UnixNano())
	// Every single flipped bit is caught as corruption.
	for i := 0; i < RecordSize; i++ {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			if err := Decode(b, 7); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d bit %d flipped: %v, want corrupt", i, bit, err)
			}
		}
	}
	// An intact record in the wrong place (another sequence number).
	if err := Decode(Encode(8, 1), 7); !errors.Is(err, ErrCorrupt) {
		t.Errorf("record 8 read as 7: %v", err)
	}
	// Not there: short, empty, a hole.
	for name, b := range map[string][]byte{"short": good[:63], "empty": nil, "hole": make([]byte, RecordSize)} {
		if err := Decode(b, 7); !errors.Is(err, ErrLost) {
			t.Errorf("%s: %v, want lost", name, err)
		}
	}
}

// memFiles is a fake fresh mount.
type memFiles map[string][]byte

func (m memFiles) read(file string, off int64, n int) ([]byte, error) {
	b, ok := m[file]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", file, os.ErrNotExist)
	}
	if off >= int64(len(b)) {
		return nil, nil
	}
	end := min(off+int64(n), int64(len(b)))
	return b[off:end], nil
}

const sec = int64(time.Second)

func TestCheck(t *testing.T) {
	var data []byte
	var evs []Event
	for seq := uint64(1); seq <= 10; seq++ {
		data = append(data, Encode(seq, 0)...)
		start := int64(seq) * sec
		end := start + sec/10
		if seq == 6 { // in flight at the fault (5.5 s), stalled until 9 s
			end = 9 * sec
		}
		evs = append(evs, Event{Ev: EvAck, File: DataFile, Seq: seq, Start: start, End: end})
	}
	evs = append(evs,
		Event{Ev: EvAck, File: "new-000001", Seq: 1, Start: 2 * sec, End: 2*sec + 1},
		Event{Ev: EvNewOpen, File: "new-000001", Seq: 1, Start: 2 * sec, End: 2*sec + 1},
		Event{Ev: EvNewOpen, File: "new-000002", Seq: 2, Start: 6 * sec, End: 12 * sec},
		Event{Ev: EvNewOpen, File: "new-000003", Seq: 3, Start: 12 * sec, End: 12*sec + 5},
	)
	files := memFiles{DataFile: data, "new-000001": Encode(1, 0)}
	fault := 5*sec + sec/2

	r := Check(append([]Event(nil), evs...), files.read, fault, "denied")
	if r.Acked != 11 || r.Lost != 0 || r.Corrupt != 0 {
		t.Fatalf("intact run: %+v", r)
	}
	// Record 7 is the first I/O begun after the fault: it ended at 7.1 s.
	if r.OutageS != 1.6 || r.NewOpenS != 6.5 {
		t.Errorf("outage %v newopen %v, want 1.6 and 6.5", r.OutageS, r.NewOpenS)
	}
	if r.Locks != LockKept || r.Stalls != 2 || r.MaxOpS != 6 {
		t.Errorf("locks %s stalls %d max %v", r.Locks, r.Stalls, r.MaxOpS)
	}

	// One byte of record 4 changed, record 9 gone (the file cut short after
	// 8 records), the new file missing: one corrupt, three lost.
	bad := bytes.Clone(data)
	bad[3*RecordSize+30] ^= 0x40
	bad = bad[:8*RecordSize]
	r = Check(append([]Event(nil), evs...), memFiles{DataFile: bad}.read, fault, "denied")
	if r.Corrupt != 1 || r.Lost != 3 {
		t.Errorf("damaged: corrupt %d lost %d, want 1 and 3 (%v)", r.Corrupt, r.Lost, r.Problems)
	}
	if !strings.Contains(strings.Join(r.Problems, "\n"), "data record 4: corrupt") {
		t.Errorf("problems do not name record 4: %v", r.Problems)
	}

	// Lock outcomes: a conflicting lock granted with no error is a silent
	// loss; an error on the lock's file means the application was told.
	if r := Check(append([]Event(nil), evs...), files.read, fault, "granted"); r.Locks != LockSilentlyLost {
		t.Errorf("granted probe: %s", r.Locks)
	}
	told := append(append([]Event(nil), evs...), Event{Ev: EvError, Op: "lockio", File: LockFile, Start: 6 * sec, End: 8 * sec, Err: "input/output error"})
	if r := Check(told, files.read, fault, "granted"); r.Locks != LockReportedLost || r.Errors != 1 {
		t.Errorf("lock error: %s, %d errors", r.Locks, r.Errors)
	}
	if r := Check(append([]Event(nil), evs...), files.read, fault, ""); r.Locks != LockUnknown {
		t.Errorf("no probe: %s", r.Locks)
	}
	// Never recovered.
	if r := Check(append([]Event(nil), evs...), files.read, 20*sec, "denied"); r.OutageS != -1 || r.NewOpenS != -1 {
		t.Errorf("no success after the fault: %v %v", r.OutageS, r.NewOpenS)
	}
}

func TestParseLog(t *testing.T) {
	log := "{\"ev\":\"ack\",\"file\":\"data\",\"seq\":1,\"start\":1,\"end\":2}\n{\"ev\":\"ack\",\"fi"
	evs, err := ParseLog([]byte(log))
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Errorf("cut last line: %v %+v", err, evs)
	}
	if _, err := ParseLog([]byte("{\"ev\":1}\n{}\n")); err == nil {
		t.Error("a bad line in the middle is accepted")
	}
}

// TestRunAndCheck runs the workload on a local directory and checks it,
// then damages the data file.
func TestRunAndCheck(t *testing.T) {
	dir := t.TempDir()
	log := &syncBuf{}
	logMu := NewLog(log)
	deadline := time.Now().Add(1500 * time.Millisecond)
	w := &Workload{Dir: filepath.Join(dir, "wl"), Log: logMu, Interval: 10 * time.Millisecond,
		Stop: func() bool { return time.Now().After(deadline) }}
	done := make(chan struct{})
	var probe string
	go func() {
		defer close(done)
		// While the run holds its lock, a conflicting lock (from another
		// open file description of this process: fcntl locks are per
		// process, so ask a child) must be denied.
		for !log.has(`"ev":"lock"`) {
			if time.Now().After(deadline) {
				t.Error("the run did not take its lock")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		probe = probeInChild(t, filepath.Join(dir, "wl", LockFile))
	}()
	sum, err := w.Run()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ParseLog(log.bytes())
	if err != nil {
		t.Fatal(err)
	}
	r := Check(evs, DirReader(w.Dir), 0, probe)
	if r.Acked != sum.Acked+sum.NewOpens || r.Acked < 10 || r.Lost != 0 || r.Corrupt != 0 || r.Errors != 0 || r.Locks != LockKept {
		t.Fatalf("clean run: %+v (summary %+v)", r, sum)
	}
	f, err := os.OpenFile(filepath.Join(w.Dir, DataFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, RecordSize+20) // record 2's payload
	f.Truncate(5 * RecordSize)             // records 6.. gone
	f.Close()
	r = Check(evs, DirReader(w.Dir), 0, probe)
	if r.Corrupt != 1 || r.Lost != sum.Acked-5 {
		t.Errorf("damaged file: corrupt %d lost %d, want 1 and %d", r.Corrupt, r.Lost, sum.Acked-5)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.b.String(), sub)
}

func (s *syncBuf) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// probeInChild runs probelock in a child process (this test binary again).
func probeInChild(t *testing.T, file string) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestProbeChild$")
	cmd.Env = append(os.Environ(), "WORKLOAD_PROBE="+file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("probe child: %v %s", err, out)
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "probe: ") {
			return strings.TrimPrefix(l, "probe: ")
		}
	}
	t.Errorf("probe child said %s", out)
	return ""
}

func TestProbeChild(t *testing.T) {
	file := os.Getenv("WORKLOAD_PROBE")
	if file == "" {
		return // only as probeInChild's child
	}
	res, err := ProbeLock(file)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("probe: %s\n", res)
}
