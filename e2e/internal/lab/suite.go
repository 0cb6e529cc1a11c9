package lab

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// SuiteOptions control RunSuite.
type SuiteOptions struct {
	// Bin and Args are the iscsi-test-cu command line.
	Bin  string
	Args []string
	// Stall kills the suite when no new test starts for this long: the
	// suite spins forever when the target dies under it.
	Stall time.Duration
	// Timeout kills the suite after this long in total.
	Timeout time.Duration
	// TargetDone, when not nil, is closed when the target exits; the suite
	// is killed then, since nothing it reports afterwards means anything.
	TargetDone <-chan struct{}
	// Log receives a copy of the suite's stdout and stderr (may be nil).
	Log io.Writer
}

// SuiteRun is what RunSuite saw.
type SuiteRun struct {
	Stdout   []byte
	Aborted  string // why the harness killed the suite; empty if it finished
	ExitErr  error  // the suite's exit status
	Duration time.Duration
}

// testStart is how CUnit's verbose mode starts each test; it flushes
// stdout right after it, so it is a reliable progress signal.
var testStart = []byte("\n  Test: ")

// RunSuite runs iscsi-test-cu under a watchdog.
func RunSuite(o SuiteOptions) SuiteRun {
	start := time.Now()
	var run SuiteRun
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	cmd := exec.Command(o.Bin, o.Args...)
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		run.ExitErr = err
		return run
	}
	if err := cmd.Start(); err != nil {
		run.ExitErr = fmt.Errorf("start %s: %w (install it with `apt-get install -y libiscsi-bin`)", o.Bin, err)
		return run
	}
	var (
		out     bytes.Buffer // written by the reader, read after readDone
		mu      sync.Mutex
		current = "no test yet" // the running test, for abort messages
	)
	last := func() string { mu.Lock(); defer mu.Unlock(); return current }
	progress := make(chan struct{}, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 32*1024)
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				prev := out.Len()
				out.Write(buf[:n])
				log.Write(buf[:n])
				// Look back a little so a marker split across reads counts.
				from := max(prev-len(testStart), 0)
				if bytes.Contains(out.Bytes()[from:], testStart) {
					mu.Lock()
					current = lastTest(out.Bytes())
					mu.Unlock()
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()

	stall := time.NewTimer(o.Stall)
	defer stall.Stop()
	overall := time.NewTimer(o.Timeout)
	defer overall.Stop()
	kill := func(reason string) {
		if run.Aborted == "" {
			run.Aborted = reason
			_ = cmd.Process.Kill()
		}
	}
	targetDone := o.TargetDone
loop:
	for {
		select {
		case <-readDone:
			break loop
		case <-progress:
			stall.Reset(o.Stall)
		case <-stall.C:
			kill(fmt.Sprintf("no new test started for %s (stuck in %s)", o.Stall, last()))
		case <-overall.C:
			kill(fmt.Sprintf("overall timeout of %s reached (in %s)", o.Timeout, last()))
		case <-targetDone:
			targetDone = nil
			kill(fmt.Sprintf("the target exited during %s", last()))
		}
	}
	run.ExitErr = cmd.Wait()
	run.Stdout = out.Bytes()
	run.Duration = time.Since(start)
	return run
}

// lastTest names the last test started in b.
func lastTest(b []byte) string {
	i := bytes.LastIndex(b, testStart)
	if i < 0 {
		return "no test yet"
	}
	s := string(b[i+len(testStart):])
	name, _, _ := strings.Cut(s, " ...")
	return "test " + name
}
