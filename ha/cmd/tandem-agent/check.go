package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
)

// checkResources runs each resource's own host checks (resource.Checker:
// the VIP inside its interface's subnet, MQ installed...), which read the
// host and change nothing, so a mistake fails --check (and the unit's
// ExecStartPre) rather than the first start after initdead. Every
// resource is checked; the errors are joined.
func checkResources(ctx context.Context, cfg *config.Config) error {
	var errs []error
	for _, s := range cfg.Resources {
		r, err := resource.Build(s, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c, ok := r.(resource.Checker); ok {
			if err := c.Check(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// paramsCommand prints the resource types' parameter tables.
func paramsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "params [type]",
		Short: "List the parameters of each resource type (or of one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			types := resource.Types()
			if len(args) == 1 {
				if resource.ParamTable(args[0]) == nil {
					return fmt.Errorf("%q is not a resource type: use one of %s", args[0], strings.Join(types, ", "))
				}
				types = args
			}
			printParams(cmd.OutOrStdout(), types)
			return nil
		},
	}
}

func printParams(w io.Writer, types []string) {
	for i, typ := range types {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "type %s\n", typ)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range resource.ParamTable(typ) {
			req := ""
			if p.Required {
				req = "required"
			}
			fmt.Fprintf(tw, "  %s\t%s\te.g. %s\t%s\n", p.Key, req, p.Example, p.Doc)
		}
		tw.Flush()
	}
}
