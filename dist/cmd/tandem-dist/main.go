// Command tandem-dist builds tandem's release (package dist): static
// binaries, deb and rpm packages and the offline bundle. `make dist` runs
//
//	tandem-dist --out build/dist --version "$(git describe --always --dirty)" \
//	  --commit "$(git rev-parse HEAD)" --epoch "$(git log -1 --format=%ct)"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tandem-ha/tandem/dist"
)

func main() {
	var o dist.Options
	var epoch string
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Out, "out", "build/dist", "output directory (emptied first)")
	flag.StringVar(&o.Version, "version", "", "version: git describe --always --dirty")
	flag.StringVar(&o.Commit, "commit", "", "commit: git rev-parse HEAD")
	flag.StringVar(&epoch, "epoch", os.Getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH: git log -1 --format=%ct")
	flag.StringVar(&o.Go, "go", "go", "go command")
	flag.Parse()
	if err := run(o, epoch); err != nil {
		fmt.Fprintln(os.Stderr, "tandem-dist:", err)
		os.Exit(1)
	}
}

func run(o dist.Options, epoch string) error {
	if o.Version == "" || o.Commit == "" {
		return fmt.Errorf("--version and --commit are required (make dist passes them from git)")
	}
	t, err := dist.Epoch(epoch)
	if err != nil {
		return err
	}
	o.Epoch = t
	o.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := dist.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d packages, bundle %s, SHA256SUMS\n", o.Out, len(res.Packages), res.Bundle)
	return nil
}
