// Command ocf-ibmmq is the OCF resource agent ocf:tandem:ibmmq. Install it
// as /usr/lib/tandem/ocf-ibmmq and mqres/ocf/ibmmq as
// /usr/lib/ocf/resource.d/tandem/ibmmq (or the binary itself there).
package main

import (
	"os"

	"github.com/tandem-ha/tandem/mqres/ocf"
)

func main() {
	action := ""
	if len(os.Args) > 1 {
		action = os.Args[1]
	} else if a, ok := os.LookupEnv("__OCF_ACTION"); ok {
		action = a
	}
	os.Exit(ocf.Run(action, os.LookupEnv, os.Stdout, os.Stderr))
}
