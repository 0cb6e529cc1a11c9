// Command mqstub is a TEST DOUBLE of IBM MQ's control commands (see
// mqres/internal/stub): never install it where real MQ lives. Run
// `mqstub install DIR` to create the crtmqm, strmqm, endmqm, dspmq,
// dspmqinf, addmqinf links in DIR; `mqstub put|get QM QUEUE` use the
// persistent queue.
package main

import (
	"os"

	"github.com/tandem-ha/tandem/mqres/internal/stub"
)

func main() { os.Exit(stub.Main(os.Args)) }
