package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/vmlab"
)

// The foreground lab of `make lab-up` answers `tandem-lab shell` and
// `tandem-lab down` on a unix socket: one JSON request per connection.
type request struct {
	Node   string `json:"node"`
	Script string `json:"script"`
	Down   bool   `json:"down"`
}

type reply struct {
	Out string `json:"out"`
	Err string `json:"err"`
}

func socketPath(cache string) string { return filepath.Join(filepath.Dir(cache), "lab", "lab.sock") }

// up keeps a lab running in the foreground until SIGINT or `down`.
func up(ctx context.Context, l *vmlab.Lab, sock string) error {
	_ = os.MkdirAll(filepath.Dir(sock), 0o755)
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	defer ln.Close()
	fmt.Printf("\nlab up in namespace %s; the VIP is %s, MQ's listener %s\n", l.Netns(), vmlab.VIP.Addr(), vmlab.MQAddr())
	fmt.Println("  make lab-shell NODE=mqmaster   (storage, mqmaster, mqslave)")
	fmt.Println("  make lab-down                  (or Ctrl-C here)")
	down := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req request
				if err := json.NewDecoder(c).Decode(&req); err != nil {
					return
				}
				if req.Down {
					_ = json.NewEncoder(c).Encode(reply{Out: "tearing the lab down\n"})
					close(down)
					return
				}
				i := -1
				for k, n := range vmlab.GuestNames {
					if strings.EqualFold(n, req.Node) || strings.EqualFold(vmlab.NodeNames[k], req.Node) {
						i = k
					}
				}
				var rep reply
				if i < 0 {
					rep.Err = fmt.Sprintf("no guest %q: use storage, mqmaster or mqslave", req.Node)
				} else {
					sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					out, err := l.Sh(sctx, i, req.Script, nil)
					cancel()
					rep.Out = out
					if err != nil {
						rep.Err = err.Error()
					}
				}
				_ = json.NewEncoder(c).Encode(rep)
			}()
		}
	}()
	select {
	case <-down:
	case <-ctx.Done():
	}
	return nil
}

// call sends one request to the running lab.
func call(sock string, req request) (reply, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return reply{}, fmt.Errorf("no lab running (%w): start one with make lab-up", err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return reply{}, err
	}
	var rep reply
	err = json.NewDecoder(c).Decode(&rep)
	return rep, err
}

// shell runs commands in a guest of the running lab: the arguments as one
// command, or each line of stdin.
func shell(sock, node string, args []string, in io.Reader) error {
	run := func(script string) {
		rep, err := call(sock, request{Node: node, Script: script})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		fmt.Print(rep.Out)
		if rep.Err != "" {
			fmt.Fprintln(os.Stderr, rep.Err)
		}
	}
	if len(args) > 0 {
		run(strings.Join(args, " "))
		return nil
	}
	fmt.Printf("%s$ ", node)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			run(s)
		}
		fmt.Printf("%s$ ", node)
	}
	fmt.Println()
	return nil
}
