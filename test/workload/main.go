// Command workload is the application the lab's kernel clients run on their
// NFS and SMB mounts during a failover, and the checker that judges the run
// afterwards.
//
//	workload run -dir D -log L -stop S      write, read back, lock; log every acknowledgment
//	workload probelock -file F              try a conflicting lock: "granted" or "denied"
//	workload check -dir D -log L -fault T   read every acknowledged record back (through a fresh mount)
//
// run writes RecordSize-byte records (sequence number, time, payload,
// CRC-32C) into D/data, each fsync'd and read back, and logs each
// acknowledgment (a JSON line with start and end times) to L; it holds a
// POSIX (fcntl) write lock on D/lock for the whole run and writes into the
// locked range once a second (an error there is the kernel telling the
// application it lost the lock); and once a second it creates a new file,
// locks it, writes and fsyncs a record in it, and closes it. Every error is
// logged. It stops when the file S appears.
//
// check reads the log, reads every acknowledged record back from D (which
// the caller mounts afresh), and prints one JSON object (a Report).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workload run|probelock|check ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "probelock":
		err = cmdProbe(os.Args[2:])
	case "check":
		err = cmdCheck(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dir := fs.String("dir", "", "directory on the mount")
	logPath := fs.String("log", "", "acknowledgment log (JSON lines)")
	stop := fs.String("stop", "", "stop when this file exists")
	interval := fs.Duration("interval", 50*time.Millisecond, "pause between record writes")
	fs.Parse(args)
	if *dir == "" || *logPath == "" || *stop == "" {
		return fmt.Errorf("run: -dir, -log and -stop are required")
	}
	lf, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	w := &Workload{Dir: *dir, Log: NewLog(lf), Interval: *interval, Stop: func() bool {
		_, err := os.Stat(*stop)
		return err == nil
	}}
	sum, err := w.Run()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}

func cmdProbe(args []string) error {
	fs := flag.NewFlagSet("probelock", flag.ExitOnError)
	file := fs.String("file", "", "the file whose lock to probe")
	fs.Parse(args)
	res, err := ProbeLock(*file)
	if err != nil {
		return err
	}
	fmt.Println(res)
	return nil
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	dir := fs.String("dir", "", "directory on a FRESH mount of the same export or share")
	logPath := fs.String("log", "", "the run's log")
	proto := fs.String("proto", "", "protocol name for the report")
	fault := fs.String("fault", "0", "fault time, Unix ns (0: no fault)")
	probe := fs.String("probe", "", "result of probelock while the run held its lock (granted|denied; empty: not probed)")
	fs.Parse(args)
	t, err := strconv.ParseInt(*fault, 10, 64)
	if err != nil {
		return fmt.Errorf("check: -fault: %v", err)
	}
	b, err := os.ReadFile(*logPath)
	if err != nil {
		return err
	}
	evs, err := ParseLog(b)
	if err != nil {
		return err
	}
	rep := Check(evs, DirReader(*dir), t, *probe)
	rep.Proto = *proto
	return json.NewEncoder(os.Stdout).Encode(rep)
}
