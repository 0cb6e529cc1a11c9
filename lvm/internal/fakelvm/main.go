// Command fakelvm stands in for the lvm binary in tests of lvm.ExecRunner
// (see lvmtest.Binary). Its behaviour comes from the environment:
// FAKE_LVM_ARGS names a file that gets its argv and whether
// LVM_SUPPRESS_FD_WARNINGS was set; FAKE_LVM_STDOUT and FAKE_LVM_STDERR
// are printed; FAKE_LVM_EXIT is the exit status; FAKE_LVM_HANG names a
// file that gets the PID of a child it starts, after which both block
// forever, like an lvm stuck on a lock with a helper of its own.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	if os.Getenv("FAKE_LVM_CHILD") != "" {
		block()
	}
	if p := os.Getenv("FAKE_LVM_ARGS"); p != "" {
		s := strings.Join(os.Args[1:], "\n") + "\nLVM_SUPPRESS_FD_WARNINGS=" + os.Getenv("LVM_SUPPRESS_FD_WARNINGS") + "\n"
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(99)
		}
	}
	if p := os.Getenv("FAKE_LVM_HANG"); p != "" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "FAKE_LVM_CHILD=1")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(99)
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(child.Process.Pid)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(99)
		}
		block()
	}
	fmt.Fprint(os.Stdout, os.Getenv("FAKE_LVM_STDOUT"))
	fmt.Fprint(os.Stderr, os.Getenv("FAKE_LVM_STDERR"))
	code, _ := strconv.Atoi(os.Getenv("FAKE_LVM_EXIT"))
	os.Exit(code)
}

// block never returns (a bare select{} would be reported as a deadlock).
func block() {
	for {
		time.Sleep(time.Hour)
	}
}
