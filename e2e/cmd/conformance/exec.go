package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
)

// newExec is `conformance exec -- CMD ARGS`: start a target like the
// conformance run does, run CMD against it ({url}, {port}, {iqn}, {lun}
// replaced; also in $TANDEM_URL), stop the target. make bench uses it.
func newExec() *cobra.Command {
	f := &flags{}
	c := &cobra.Command{
		Use:           "exec [flags] -- CMD [ARGS...]",
		Short:         "Start a target, run CMD against it, stop the target",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, _, cleanup, err := startTarget(f, os.Stderr, lab.CHAP{})
			if err != nil {
				return err
			}
			defer cleanup(false)
			r := strings.NewReplacer("{url}", t.URL, "{port}", strconv.Itoa(t.Port), "{iqn}", f.iqn, "{lun}", strconv.FormatUint(f.lun, 10))
			argv := make([]string, len(args))
			for i, a := range args {
				argv[i] = r.Replace(a)
			}
			fmt.Fprintf(os.Stderr, "running %s\n", strings.Join(argv, " "))
			c := exec.Command(argv[0], argv[1:]...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
			c.Env = append(os.Environ(), "TANDEM_URL="+t.URL)
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return fmt.Errorf("%s exited with %d", argv[0], ee.ExitCode())
				}
				return err
			}
			return nil
		},
	}
	addTargetFlags(c, f)
	return c
}
