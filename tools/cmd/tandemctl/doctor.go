package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/tools/doctor"
)

// errDoctorFailed makes doctor exit non-zero once its report is printed.
var errDoctorFailed = errors.New("doctor found failures: fix them (see FIX) and run it again")

func newDoctorCmd() *cobra.Command {
	opt := doctor.Options{}
	var asJSON bool
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node (or storage server) for the known pitfalls; exits non-zero on a failure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(doctor.Roles, opt.Role) {
				return fmt.Errorf("--role %q: use %s", opt.Role, strings.Join(doctor.Roles, " or "))
			}
			opt.Socket, _ = cmd.Flags().GetString("socket")
			opt.Timeout, _ = cmd.Flags().GetDuration("timeout")
			rs := doctor.Run(doctor.Gather(cmd.Context(), opt))
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Role    string          `json:"role"`
					Failed  bool            `json:"failed"`
					Results []doctor.Result `json:"results"`
				}{opt.Role, doctor.Failed(rs), rs}); err != nil {
					return err
				}
			} else {
				printDoctor(cmd.OutOrStdout(), rs)
			}
			if doctor.Failed(rs) {
				return errDoctorFailed
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&opt.Role, "role", "node", "what this host is: node (runs tandem-agent) or storage (runs tandem-target)")
	f.StringVar(&opt.ConfigPath, "config", config.DefaultPath, "the agent's configuration (role node)")
	f.StringVar(&opt.Node, "node", "", "this node's name, as given to tandem-agent --node (default: uname -n)")
	f.StringVar(&opt.InitiatorNameFile, "initiator-name-file", "/etc/iscsi/initiatorname.iscsi", "open-iscsi's initiator name file")
	f.StringVar(&opt.PeerInitiatorName, "peer-initiator-name", "", "the peer's InitiatorName, to check the two differ")
	f.StringVar(&opt.TargetConfigPath, "target-config", "/etc/tandem/target.yaml", "tandem-target's configuration (role storage)")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	return c
}

func printDoctor(w io.Writer, rs []doctor.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tDETAIL\t")
	n := map[doctor.Status]int{}
	for _, r := range rs {
		n[r.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", strings.ToUpper(string(r.Status)), r.Name, r.Detail)
		if r.Fix != "" && r.Status != doctor.Pass {
			fmt.Fprintf(tw, "\t\tFIX: %s\t\n", r.Fix)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed, %d skipped\n", n[doctor.Pass], n[doctor.Warn], n[doctor.Fail], n[doctor.Skip])
}
