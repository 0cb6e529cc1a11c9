package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/control"
)

// defaultMoveTimeout bounds standby|takeover --wait when --timeout is not
// given: a move stops and starts the whole group (an MQ stop alone may
// take its 60 s stop_timeout), far beyond the 10 s a plain request needs.
const defaultMoveTimeout = 3 * time.Minute

// movePoll is how often --wait asks the agent for its status.
const movePoll = 200 * time.Millisecond

// moveResult is the --json answer of standby|takeover.
type moveResult struct {
	Command control.Command `json:"command"`
	// Waited: --wait was given; Done: the move completed (always false
	// without --wait: the request was only accepted).
	Waited  bool            `json:"waited"`
	Done    bool            `json:"done"`
	Elapsed time.Duration   `json:"elapsed_ns"`
	Error   string          `json:"error,omitempty"`
	Status  *control.Status `json:"status,omitempty"`
}

// moveJudge says whether a standby or takeover is complete in st (done),
// has failed (err, with the agent's cause), or is still under way. before
// is the status taken before the request: a failure cause already shown
// then is not this move's.
func moveJudge(kind control.Command, before, st control.Status) (done bool, err error) {
	n, p := st.Node, st.Peer
	switch n.State {
	case "fenced":
		return false, fmt.Errorf("this node is fenced: %s (stop everything here, then tandemctl rejoin once the peer holds the reservation)", n.FencedBy)
	case "failed":
		return false, fmt.Errorf("this node failed: %s (fix it, then tandemctl takeover)", dash(n.Cause))
	}
	switch kind {
	case control.CmdStandby:
		if p.State == "failed" {
			return false, fmt.Errorf("peer %s failed to start the group: see tandemctl status on %s", p.Name, p.Name)
		}
		return n.State == "standby" && p.Alive && p.State == "active", nil
	case control.CmdTakeover:
		if n.State == "active" {
			return true, nil
		}
		if n.Cause != "" && n.Cause != before.Node.Cause && n.State == "standby" {
			return false, fmt.Errorf("the group failed here and went back to %s: %s", p.Name, n.Cause)
		}
		return false, nil
	}
	return false, fmt.Errorf("%s has no completion to wait for", kind)
}

// newMoveCmd is standby or takeover: the request, and with --wait the
// wait until the group has moved.
func newMoveCmd(kind control.Command, short string) *cobra.Command {
	var wait, asJSON bool
	c := &cobra.Command{
		Use:   string(kind),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			socket, _ := cmd.Flags().GetString("socket")
			timeout, _ := cmd.Flags().GetDuration("timeout")
			if wait && !cmd.Flags().Changed("timeout") {
				timeout = defaultMoveTimeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := move(ctx, control.NewClient(socket), kind, wait, time.Now)
			if err != nil {
				res.Error = err.Error()
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil {
					return jerr
				}
			} else if err == nil {
				printMove(cmd.OutOrStdout(), res)
			}
			if err != nil && ctx.Err() != nil && wait {
				return fmt.Errorf("%s not done within %s: %w (see tandemctl status; a longer --timeout waits longer)", kind, timeout, err)
			}
			return err
		},
	}
	c.Flags().BoolVar(&wait, "wait", false, "return once the group has moved (bounded by --timeout, default "+defaultMoveTimeout.String()+" with --wait)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result, with the final status, as JSON")
	return c
}

func move(ctx context.Context, c *control.Client, kind control.Command, wait bool, now func() time.Time) (moveResult, error) {
	res := moveResult{Command: kind, Waited: wait}
	start := now()
	var before control.Status
	if wait {
		st, err := c.Status(ctx)
		if err != nil {
			return res, err
		}
		before = st
	}
	var err error
	switch kind {
	case control.CmdStandby:
		err = c.Standby(ctx)
	case control.CmdTakeover:
		err = c.Takeover(ctx)
	default:
		err = fmt.Errorf("%s: not a move", kind)
	}
	if err != nil || !wait {
		res.Elapsed = now().Sub(start)
		return res, err
	}
	t := time.NewTicker(movePoll)
	defer t.Stop()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			res.Elapsed = now().Sub(start)
			return res, err
		}
		res.Status = &st
		done, err := moveJudge(kind, before, st)
		res.Elapsed = now().Sub(start)
		if err != nil || done {
			res.Done = done
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, errors.New("last state: this node " + st.Node.State + ", peer " + st.Peer.State)
		case <-t.C:
		}
	}
}

func printMove(w io.Writer, r moveResult) {
	if !r.Waited {
		fmt.Fprintf(w, "%s requested: see tandemctl status (or use --wait)\n", r.Command)
		return
	}
	holder := r.Status.Node.Name
	if r.Command == control.CmdStandby {
		holder = r.Status.Peer.Name
	}
	fmt.Fprintf(w, "%s done in %s: %s is active\n", r.Command, r.Elapsed.Round(time.Millisecond), holder)
}

// printCause shows why this node is failed (or what last failed here).
func printCause(w io.Writer, st control.Status) {
	switch {
	case st.Node.State == "failed":
		fmt.Fprintf(w, "\nFAILED: %s\n(fix the cause, then `tandemctl takeover`; the node will not take the group on its own)\n", dash(st.Node.Cause))
	case st.Node.Cause != "":
		fmt.Fprintf(w, "\nlast failure here: %s\n", st.Node.Cause)
	}
}
