package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/admin/adminclient"
	"github.com/tandem-ha/tandem/target/config"
)

// storage holds the flags the provisioning commands share.
type storage struct {
	socket  string
	timeout time.Duration
	asJSON  bool
	noDM    bool
}

// lvmRunner and lvmDevDir replace the lvm2 tools and /dev in tests
// (lvmtest.Fake).
var (
	lvmRunner lvm.Runner
	lvmDevDir string
)

func (s *storage) client(cmd *cobra.Command) (*adminclient.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(cmd.Context(), s.timeout)
	return adminclient.New(s.socket), ctx, cancel
}

// lvm returns the lvm client; removing or shrinking an LV asks the
// target whether a LUN serves it.
func (s *storage) lvm() *lvm.Client {
	c := adminclient.New(s.socket)
	return lvm.New(lvm.Options{NoDeviceMapper: s.noDM, Runner: lvmRunner, DevDir: lvmDevDir, Timeout: s.timeout,
		InUse: func(vg, lv string) (string, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			defer cancel()
			who, used, err := c.UsedBy(ctx, vg, lv)
			if err != nil {
				return "", false // no tandem-target answers here: none of its LUNs serves it
			}
			return who, used
		}})
}

// print writes v as JSON with --json, else calls text.
func (s *storage) print(w io.Writer, v any, text func(w io.Writer)) error {
	if s.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}

// result is what a change command prints with --json.
type result struct {
	Changed bool   `json:"changed"`
	Message string `json:"message"`
	// Secret is set once, by chap set/rotate without --secret-file.
	Secret       string `json:"secret,omitempty"`
	MutualSecret string `json:"mutual_secret,omitempty"`
}

func (s *storage) done(cmd *cobra.Command, r result) error {
	return s.print(cmd.OutOrStdout(), r, func(w io.Writer) { fmt.Fprintln(w, r.Message) })
}

// addStorageCommands adds the provisioning commands to root.
func addStorageCommands(root *cobra.Command) *storage {
	s := &storage{}
	pf := root.PersistentFlags()
	pf.StringVar(&s.socket, "target-socket", adminclient.DefaultSocket, "tandem-target admin socket")
	pf.BoolVar(&s.asJSON, "json", false, "print JSON")
	pf.BoolVar(&s.noDM, "lvm-metadata-only", false, "run lvm2 without device-mapper (--driverloaded n): no activation, no device nodes")
	s.timeout = 30 * time.Second
	root.AddCommand(s.volumeCmd(), s.targetCmd(), s.lunCmd(), s.aclCmd(), s.chapCmd(), s.provisionCmd(), s.nodeConfigCmd())
	return s
}

func parseSize(s string) (uint64, error) {
	n, err := config.ParseSize(s)
	return uint64(n), err
}

func (s *storage) volumeCmd() *cobra.Command {
	vol := &cobra.Command{Use: "volume", Short: "LVM logical volumes for LUNs (lvm2)"}
	var thinPool string
	create := &cobra.Command{Use: "create VG/NAME SIZE", Short: "Create a linear LV, or a thin LV with --thin-pool", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			vg, name, err := splitLV(args[0])
			if err != nil {
				return err
			}
			size, err := parseSize(args[1])
			if err != nil {
				return err
			}
			var lv lvm.LV
			if thinPool != "" {
				lv, err = s.lvm().CreateThin(cmd.Context(), vg, thinPool, name, size)
			} else {
				lv, err = s.lvm().Create(cmd.Context(), vg, name, size)
			}
			if err != nil {
				return err
			}
			return s.print(cmd.OutOrStdout(), lv, func(w io.Writer) { fmt.Fprintf(w, "created %s/%s, %d bytes\n", lv.VG, lv.Name, lv.Size) })
		}}
	create.Flags().StringVar(&thinPool, "thin-pool", "", "make a thin LV in this pool of the VG")
	var force bool
	resize := &cobra.Command{Use: "resize VG/NAME SIZE|+SIZE", Short: "Grow an LV, then the LUN on it (CAPACITY DATA HAS CHANGED)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			vg, name, err := splitLV(args[0])
			if err != nil {
				return err
			}
			l := s.lvm()
			cur, err := l.LV(cmd.Context(), vg, name)
			if err != nil {
				return err
			}
			size, err := parseSize(strings.TrimPrefix(args[1], "+"))
			if err != nil {
				return err
			}
			if strings.HasPrefix(args[1], "+") {
				size += cur.Size
			}
			lv, err := l.Resize(cmd.Context(), vg, name, size, force)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("resized %s/%s to %d bytes", vg, name, lv.Size)
			if who, used, err := s.usedBy(cmd, vg, name); err == nil && used {
				t, id := splitUser(who)
				c, ctx, cancel := s.client(cmd)
				defer cancel()
				if err := c.ResizeLUN(ctx, t, id, 0); err != nil {
					return fmt.Errorf("%s, but the LUN did not take the new size: %w (run tandemctl lun resize %s %d)", msg, err, t, id)
				}
				msg += "; " + who + " now serves the new size"
			}
			return s.print(cmd.OutOrStdout(), lv, func(w io.Writer) { fmt.Fprintln(w, msg) })
		}}
	resize.Flags().BoolVar(&force, "force", false, "allow shrinking (destroys the data past the new end)")
	list := &cobra.Command{Use: "list [VG]", Short: "List LVs", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vg := ""
			if len(args) == 1 {
				vg = args[0]
			}
			lvs, err := s.lvm().LVs(cmd.Context(), vg)
			if err != nil {
				return err
			}
			return s.print(cmd.OutOrStdout(), lvs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LV\tSIZE\tPOOL\tATTR\t")
				for _, l := range lvs {
					fmt.Fprintf(tw, "%s/%s\t%d\t%s\t%s\t\n", l.VG, l.Name, l.Size, dash(l.Pool), l.Attr.Raw)
				}
				tw.Flush()
			})
		}}
	remove := &cobra.Command{Use: "remove VG/NAME", Short: "Remove an LV (refused while a LUN serves it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vg, name, err := splitLV(args[0])
			if err != nil {
				return err
			}
			if err := s.lvm().Remove(cmd.Context(), vg, name); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: "removed " + args[0]})
		}}
	vol.AddCommand(create, resize, list, remove)
	return vol
}

func (s *storage) usedBy(cmd *cobra.Command, vg, lv string) (string, bool, error) {
	c, ctx, cancel := s.client(cmd)
	defer cancel()
	return c.UsedBy(ctx, vg, lv)
}

// splitUser undoes UsedBy's "lun N of TARGET".
func splitUser(who string) (string, uint64) {
	var id uint64
	var t string
	_, _ = fmt.Sscanf(who, "lun %d of %s", &id, &t)
	return t, id
}

func splitLV(s string) (string, string, error) {
	vg, lv, ok := strings.Cut(s, "/")
	if !ok || vg == "" || lv == "" {
		return "", "", fmt.Errorf("%q is not VG/NAME, e.g. vg0/mq", s)
	}
	return vg, lv, nil
}

func (s *storage) targetCmd() *cobra.Command {
	tc := &cobra.Command{Use: "target", Short: "iSCSI targets of tandem-target"}
	var alias string
	create := &cobra.Command{Use: "create IQN", Short: "Create a target", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.CreateTarget(ctx, admin.TargetSpec{Name: args[0], Alias: alias}); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: "created target " + args[0]})
		}}
	create.Flags().StringVar(&alias, "alias", "", "TargetAlias")
	list := &cobra.Command{Use: "list", Short: "List targets, LUNs, ACL and sessions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			ts, err := c.Targets(ctx)
			if err != nil {
				return err
			}
			return s.print(cmd.OutOrStdout(), ts, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TARGET\tLUNS\tACL\tCHAP\tSESSIONS\t")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t\n", t.Name, len(t.LUNs), dash(strings.Join(t.Initiators, ",")), dash(t.CHAPUser), len(t.Sessions))
				}
				tw.Flush()
			})
		}}
	var force bool
	remove := &cobra.Command{Use: "remove IQN", Short: "Remove a target (refused while sessions use it unless --force)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.RemoveTarget(ctx, args[0], force); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: "removed target " + args[0]})
		}}
	remove.Flags().BoolVar(&force, "force", false, "remove even while sessions are logged in (they are dropped)")
	tc.AddCommand(create, list, remove)
	return tc
}

func (s *storage) lunCmd() *cobra.Command {
	lc := &cobra.Command{Use: "lun", Short: "Logical units of a target"}
	var (
		path, lv, size, serial string
		blockSize              uint32
		thin, readOnly         bool
	)
	add := &cobra.Command{Use: "add IQN ID (--path FILE|DEVICE [--size N] | --lv VG/NAME)", Short: "Add a LUN", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("lun id %q is not a number", args[1])
			}
			var n int64
			if size != "" {
				if n, err = config.ParseSize(size); err != nil {
					return err
				}
			}
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.AddLUN(ctx, args[0], admin.LUN{ID: id, Path: path, LV: lv, Size: n, BlockSize: blockSize, Thin: thin, ReadOnly: readOnly, Serial: serial}); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: fmt.Sprintf("added lun %d to %s", id, args[0])})
		}}
	add.Flags().StringVar(&path, "path", "", "file or block device")
	add.Flags().StringVar(&lv, "lv", "", "LVM volume VG/NAME")
	add.Flags().StringVar(&size, "size", "", "create the file at this size if missing (10GiB)")
	add.Flags().StringVar(&serial, "serial", "", "unit serial number (default: derived from target and id)")
	add.Flags().Uint32Var(&blockSize, "block-size", 0, "512 or 4096 (default 512)")
	add.Flags().BoolVar(&thin, "thin", false, "UNMAP and thin provisioning reporting")
	add.Flags().BoolVar(&readOnly, "read-only", false, "write-protect the LU")
	resize := &cobra.Command{Use: "resize IQN ID [SIZE]", Short: "Grow a file LUN to SIZE, or take the backing's size now (after lvextend)", Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("lun id %q is not a number", args[1])
			}
			var n int64
			if len(args) == 3 {
				if n, err = config.ParseSize(args[2]); err != nil {
					return err
				}
			}
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.ResizeLUN(ctx, args[0], id, n); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: fmt.Sprintf("lun %d of %s resized; initiators get CAPACITY DATA HAS CHANGED (rescan: iscsiadm -m session --rescan)", id, args[0])})
		}}
	var force bool
	remove := &cobra.Command{Use: "remove IQN ID", Short: "Remove a LUN (refused while sessions use its target unless --force)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("lun id %q is not a number", args[1])
			}
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.RemoveLUN(ctx, args[0], id, force); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: fmt.Sprintf("removed lun %d of %s", id, args[0])})
		}}
	remove.Flags().BoolVar(&force, "force", false, "remove even while sessions are logged in")
	list := &cobra.Command{Use: "list IQN", Short: "List a target's LUNs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			t, err := c.Target(ctx, args[0])
			if err != nil {
				return err
			}
			return s.print(cmd.OutOrStdout(), t.LUNs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LUN\tBACKING\tSIZE\tBLOCK\tSERIAL\t")
				for _, l := range t.LUNs {
					b := l.Path
					if l.LV != "" {
						b = "lv " + l.LV + " (" + l.Path + ")"
					}
					fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t\n", l.ID, b, l.Size, l.BlockSize, l.Serial)
				}
				tw.Flush()
			})
		}}
	lc.AddCommand(add, resize, remove, list)
	return lc
}

func (s *storage) aclCmd() *cobra.Command {
	ac := &cobra.Command{Use: "acl", Short: "Initiator names allowed on a target (empty ACL: everyone)"}
	ac.AddCommand(&cobra.Command{Use: "add IQN INITIATOR", Short: "Allow an initiator", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.AddInitiator(ctx, args[0], args[1]); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: "allowed " + args[1] + " on " + args[0]})
		}}, &cobra.Command{Use: "remove IQN INITIATOR", Short: "Disallow an initiator", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel := s.client(cmd)
			defer cancel()
			if err := c.RemoveInitiator(ctx, args[0], args[1]); err != nil {
				return err
			}
			return s.done(cmd, result{Changed: true, Message: "removed " + args[1] + " from " + args[0]})
		}})
	return ac
}

func isNotFound(err error) bool { return isErr(err, admin.ErrNotFound) }

func isErr(err, target error) bool { return errors.Is(err, target) }
