// Command vmagent runs inside a lab guest: it serves the control protocol
// of package vm (one JSON request per line, one response per line) on the
// virtio-serial port named by -port, running each request's command and
// reporting its output and exit status. The guest's /init starts it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/e2e/vm"
)

func main() {
	port := flag.String("port", vm.ControlPortName, "virtio-serial port name (see /sys/class/virtio-ports/*/name)")
	flag.Parse()
	for {
		if err := serve(*port); err != nil {
			fmt.Fprintln(os.Stderr, "vmagent:", err)
		}
		// The host side went away (EOF) or the port is not there yet:
		// try again, the host may reconnect.
		time.Sleep(200 * time.Millisecond)
	}
}

// findPort maps a virtio-serial port name to its /dev node.
func findPort(name string) (string, error) {
	names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(n)), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %q (is virtio_console loaded?)", name)
}

func serve(name string) error {
	dev, err := findPort(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	var wmu sync.Mutex
	reply := func(r vm.Response) {
		b, err := vm.AppendLine(nil, r)
		if err != nil {
			return
		}
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = f.Write(b)
	}
	lr := vm.NewLineReader(f)
	for {
		line, err := lr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s: %w", dev, err)
		}
		req, err := vm.DecodeRequest(line)
		if err != nil {
			reply(vm.Response{ID: req.ID, Exit: -1, Error: err.Error()})
			continue
		}
		go func() { reply(run(req)) }()
	}
}

func run(req vm.Request) vm.Response {
	ctx := context.Background()
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...)
	cmd.Dir = req.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	if len(req.Stdin) > 0 {
		cmd.Stdin = bytes.NewReader(req.Stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Daemons started by a command (iscsid) keep its pipes open; do not
	// wait for them after the command itself exits.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	resp := vm.Response{ID: req.ID, Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		resp.Exit, resp.Error = -1, fmt.Sprintf("killed after %s timeout", req.Timeout)
	case errors.As(err, &ee) && ee.Exited():
		resp.Exit = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		resp.Exit = cmd.ProcessState.ExitCode()
	default:
		resp.Exit, resp.Error = -1, err.Error()
	}
	return resp
}
