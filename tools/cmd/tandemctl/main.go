// Command tandemctl is the operator CLI of a tandem cluster. For now it
// talks to tandem-agent's control socket:
//
//	tandemctl status [--json]
//	tandemctl standby | takeover [--wait [--timeout D]] [--json]
//	tandemctl doctor [--role node|storage] [--json]
//	tandemctl maintenance on|off
//	tandemctl rejoin    (a fenced node, once stopped and the peer holds the reservation)
//	tandemctl import heartbeat [/etc/ha.d] | import tgt [/etc/tgt/targets.conf]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/internal/clidoc"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tandemctl:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var socket string
	var timeout time.Duration
	root := &cobra.Command{
		Use:           "tandemctl",
		Short:         "Operate a tandem cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&socket, "socket", control.DefaultSocket, "tandem-agent control socket")
	root.PersistentFlags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the agent")
	client := func(cmd *cobra.Command) (*control.Client, context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		return control.NewClient(socket), ctx, cancel
	}

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show nodes, links, state and resources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel := client(cmd)
			defer cancel()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the agent's JSON")

	simple := func(use, short, done string, f func(*control.Client, context.Context) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, ctx, cancel := client(cmd)
				defer cancel()
				if err := f(c, ctx); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), done)
				return nil
			}}
	}
	maint := &cobra.Command{
		Use:       "maintenance on|off",
		Short:     "Freeze (on) or resume (off) failure handling on this node",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := client(cmd)
			defer cancel()
			if err := c.Maintenance(ctx, args[0] == "on"); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "maintenance", args[0])
			return nil
		},
	}
	rejoin := simple("rejoin", "Let a fenced node rejoin as standby (refused unless everything is stopped here and the peer holds the reservation)",
		"rejoined: this node is standby", func(c *control.Client, ctx context.Context) error { return c.Rejoin(ctx) })
	root.AddCommand(status, maint, rejoin, newImportCmd(), newMoveCmd(control.CmdStandby, "Hand the resource group to the peer"), newMoveCmd(control.CmdTakeover, "Take the resource group from the peer"), newDoctorCmd())
	addStorageCommands(root) // volume, target, lun, acl, chap, provision, node-config
	clidoc.Attach(root)      // --version; man pages and completions for make dist
	return root
}

func printStatus(w io.Writer, st control.Status) {
	fmt.Fprintf(w, "cluster %s, failovers %d, up %s\n\n", st.Cluster, st.Failovers, st.Uptime.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tALIVE\tKEY\t")
	fmt.Fprintf(tw, "%s (this node)\t%s\t%s\t%s\t\n", st.Node.Name, st.Node.State, yes(st.Node.Alive), dash(st.Node.Key))
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", st.Peer.Name, st.Peer.State, yes(st.Peer.Alive), dash(st.Peer.Key))
	tw.Flush()
	if st.Node.Fenced {
		fmt.Fprintf(w, "\nFENCED: %s\n(stop everything here, then `tandemctl rejoin` once the peer holds the reservation)\n", st.Node.FencedBy)
	}
	printCause(w, st)
	if f := st.Fence; f != nil {
		holder := "none"
		if f.Holder != "" {
			holder = f.Holder
			if f.HolderKey != "" && f.HolderKey != f.Holder {
				holder += " (" + f.HolderKey + ")"
			}
		}
		fmt.Fprintf(w, "\nreservation (%s): held by %s; registered keys: %s\n", f.Resource, holder, dash(strings.Join(f.Keys, ", ")))
	}
	if d := st.DiskHeartbeat; d != nil {
		seen := "never"
		if !d.PeerLastSeen.IsZero() {
			seen = st.GeneratedAt.Sub(d.PeerLastSeen).Round(time.Millisecond).String() + " ago"
		}
		dio := "ok"
		if !d.OK {
			dio = "FAILING: " + d.LastError
		}
		fmt.Fprintf(w, "disk heartbeat: io %s, our seq %d; peer alive %s, last seen %s, seq %d, state %s\n",
			dio, d.Seq, yes(d.PeerAlive), seen, d.PeerSeq, dash(d.PeerState))
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tMODE\tUP\tLAST SEEN\tRTT\tSENT\tRECEIVED\tLOST\tDROPPED\t")
	for _, l := range st.Links {
		seen := "never"
		if !l.LastSeen.IsZero() {
			seen = st.GeneratedAt.Sub(l.LastSeen).Round(time.Millisecond).String() + " ago"
		}
		rtt := "-"
		if l.RTT > 0 {
			rtt = l.RTT.Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", l.Name, l.Mode, yes(l.Up), seen, rtt,
			l.Sent, l.Received, l.Lost, l.Forged+l.Foreign+l.Replayed+l.Malformed)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tTYPE\tSTATE\tLAST ERROR\t")
	for _, r := range st.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.Name, r.Type, r.State, strings.ReplaceAll(r.LastError, "\n", " "))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
