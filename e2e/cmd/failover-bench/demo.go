package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tandem-ha/tandem/e2e/hanet"
)

// runDemo brings up the lab, shows both agents' status, powers off the
// active node and shows the VIP answering from the peer.
func runDemo(agentBin string) error {
	dir, err := os.MkdirTemp("", "tandem-demo-ha")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := hanet.New(hanet.Options{AgentBin: agentBin, Dir: dir, LogLevel: "warn"})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Printf("lab: nodes %s and %s in network namespaces, dedicated veth %s + public bridge %s, VIP %s\n",
		hanet.Nodes[0], hanet.Nodes[1], hanet.DedicatedIf, hanet.BridgeIf, hanet.VIP)
	fmt.Printf("configs: %s, %s\n\n", l.Path("alpha.yaml"), l.Path("beta.yaml"))
	for i := range 2 {
		if err := l.Start(i); err != nil {
			return err
		}
	}
	if err := settle(l, 0); err != nil {
		return err
	}
	show(l)
	who, err := l.Probe(time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("client -> %s:%d answered by %s\n\n", hanet.VIP, hanet.EchoPort, who)

	fmt.Printf("powering off %s (links down + kill -9)...\n", hanet.Nodes[0])
	t0 := time.Now()
	if err := l.PowerOff(0); err != nil {
		return err
	}
	d, err := waitVIP(l, 1, t0)
	if err != nil {
		return err
	}
	fmt.Printf("client -> %s answered by %s %v after the power-off\n\n", hanet.VIP, hanet.Nodes[1], d.Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	show(l)
	return nil
}

func show(l *hanet.Lab) {
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := l.Client(i).Status(ctx)
		cancel()
		if err != nil {
			fmt.Printf("%-6s unreachable (%v)\n", hanet.Nodes[i], err)
			continue
		}
		fmt.Printf("%-6s state %-8s peer %s=%s failovers %d\n", st.Node.Name, st.Node.State, st.Peer.Name, st.Peer.State, st.Failovers)
		for _, k := range st.Links {
			fmt.Printf("       link %-9s %-9s up=%-5v rtt=%v\n", k.Name, k.Mode, k.Up, k.RTT.Round(time.Microsecond))
		}
		for _, r := range st.Resources {
			fmt.Printf("       resource %-4s %s\n", r.Name, r.State)
		}
	}
	fmt.Println()
}
