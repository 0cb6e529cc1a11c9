package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	haconfig "github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/admin/adminclient"
	"github.com/tandem-ha/tandem/target/config"
)

// chapFlags are the flags of chap set/rotate.
type chapFlags struct {
	user, mutualUser, secretFile string
	discovery                    bool
}

func (s *storage) chapCmd() *cobra.Command {
	cc := &cobra.Command{Use: "chap", Short: "CHAP credentials of a target or of discovery; secrets from crypto/rand, shown once"}
	mk := func(use, short string, rotate bool) *cobra.Command {
		var f chapFlags
		cmd := &cobra.Command{Use: use, Short: short, Args: cobra.RangeArgs(0, 1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if (len(args) == 0) != f.discovery {
					return fmt.Errorf("name a target IQN, or give --discovery")
				}
				c, ctx, cancel := s.client(cmd)
				defer cancel()
				target := ""
				if len(args) == 1 {
					target = args[0]
				}
				if rotate {
					cur, err := currentCHAP(ctx, c, target)
					if err != nil {
						return err
					}
					if cur.CHAPUser == "" {
						return fmt.Errorf("no CHAP to rotate on %s: use tandemctl chap set", orDiscovery(target))
					}
					f.user, f.mutualUser = cur.CHAPUser, cur.MutualCHAPUser
				}
				if f.user == "" {
					return fmt.Errorf("--user: empty: name the CHAP user the initiator presents")
				}
				r, err := s.setCHAP(ctx, c, target, f)
				if err != nil {
					return err
				}
				return s.reportSecret(cmd, r, f.secretFile)
			}}
		if !rotate {
			cmd.Flags().StringVar(&f.user, "user", "", "CHAP user the initiator presents (CHAP_N)")
			cmd.Flags().StringVar(&f.mutualUser, "mutual-user", "", "target's own user for mutual CHAP (empty: one-way)")
		}
		cmd.Flags().BoolVar(&f.discovery, "discovery", false, "for discovery sessions instead of a target")
		cmd.Flags().StringVar(&f.secretFile, "secret-file", "", "write the new secret(s) to this file (0600) instead of printing them")
		return cmd
	}
	cc.AddCommand(mk("set [IQN]", "Set CHAP with new secrets", false), mk("rotate [IQN]", "New secrets for the CHAP users in place", true))
	return cc
}

func orDiscovery(t string) string {
	if t == "" {
		return "discovery"
	}
	return t
}

type chapUsers struct{ CHAPUser, MutualCHAPUser string }

func currentCHAP(ctx context.Context, c *adminclient.Client, target string) (chapUsers, error) {
	if target == "" {
		d, err := c.Discovery(ctx)
		return chapUsers{d.CHAPUser, d.MutualCHAPUser}, err
	}
	t, err := c.Target(ctx, target)
	return chapUsers{t.CHAPUser, t.MutualCHAPUser}, err
}

// setCHAP generates the secrets and sends them over the admin socket
// (never in a child's argv, never logged).
func (s *storage) setCHAP(ctx context.Context, c *adminclient.Client, target string, f chapFlags) (result, error) {
	ch := admin.CHAP{User: f.user, Secret: string(config.GenerateSecret())}
	if f.mutualUser != "" {
		ch.MutualUser, ch.MutualSecret = f.mutualUser, string(config.GenerateSecret())
	}
	var err error
	if target == "" {
		err = c.SetDiscoveryCHAP(ctx, ch)
	} else {
		err = c.SetCHAP(ctx, target, ch)
	}
	if err != nil {
		return result{}, err
	}
	return result{Changed: true, Message: "CHAP set on " + orDiscovery(target) + " for user " + f.user,
		Secret: ch.Secret, MutualSecret: ch.MutualSecret}, nil
}

// reportSecret shows the secret once, or writes it to file (0600).
func (s *storage) reportSecret(cmd *cobra.Command, r result, file string) error {
	if file != "" {
		body := "secret=" + r.Secret + "\n"
		if r.MutualSecret != "" {
			body += "mutual_secret=" + r.MutualSecret + "\n"
		}
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(file, 0o600); err != nil {
			return err
		}
		r.Secret, r.MutualSecret = "", ""
		r.Message += "; secret written to " + file
	}
	return s.print(cmd.OutOrStdout(), r, func(w io.Writer) {
		fmt.Fprintln(w, r.Message)
		if r.Secret != "" {
			fmt.Fprintln(w, "secret (shown once, keep it):", r.Secret)
		}
		if r.MutualSecret != "" {
			fmt.Fprintln(w, "mutual secret (shown once):", r.MutualSecret)
		}
	})
}

// plan is the desired state of provision.
type plan struct {
	vg, lv, pool string
	size         uint64
	target       string
	lun          uint64
	initiators   []string
	user         string
	secretFile   string
}

func (s *storage) provisionCmd() *cobra.Command {
	var p plan
	var size string
	cmd := &cobra.Command{Use: "provision", Short: "Volume + target + LUN + ACL + CHAP in one idempotent step", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if p.size, err = parseSize(size); err != nil {
				return err
			}
			if p.vg, p.lv, err = splitLV(p.lv); err != nil {
				return fmt.Errorf("--volume: %w", err)
			}
			steps, secret, err := s.provision(cmd, p)
			if err != nil {
				return err
			}
			r := result{Changed: len(steps) > 0, Secret: secret}
			if len(steps) == 0 {
				r.Message = "nothing to change: " + p.target + " already serves " + p.vg + "/" + p.lv + " as provisioned"
			} else {
				r.Message = "done: " + strings.Join(steps, "; ")
			}
			return s.reportSecret(cmd, r, p.secretFile)
		}}
	f := cmd.Flags()
	f.StringVar(&p.lv, "volume", "", "LV VG/NAME to create (or use if it exists)")
	f.StringVar(&size, "size", "10GiB", "LV size")
	f.StringVar(&p.pool, "thin-pool", "", "make a thin LV in this pool")
	f.StringVar(&p.target, "target", "", "target IQN")
	f.Uint64Var(&p.lun, "lun", 0, "LUN id")
	f.StringSliceVar(&p.initiators, "initiator", nil, "initiator name allowed (repeat for each node)")
	f.StringVar(&p.user, "chap-user", "", "CHAP user; a secret is generated when CHAP is not set yet")
	f.StringVar(&p.secretFile, "secret-file", "", "write a generated secret to this file (0600) instead of printing it")
	_ = cmd.MarkFlagRequired("volume")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

// provision brings the storage to p, doing only what is missing, and
// says what it did; a second run does nothing.
func (s *storage) provision(cmd *cobra.Command, p plan) (steps []string, secret string, err error) {
	ctx := cmd.Context()
	l := s.lvm()
	if _, err := l.LV(ctx, p.vg, p.lv); lvmNotFound(err) {
		if p.pool != "" {
			_, err = l.CreateThin(ctx, p.vg, p.pool, p.lv, p.size)
		} else {
			_, err = l.Create(ctx, p.vg, p.lv, p.size)
		}
		if err != nil {
			return steps, "", err
		}
		steps = append(steps, "created volume "+p.vg+"/"+p.lv)
	} else if err != nil {
		return steps, "", err
	}
	c, actx, cancel := s.client(cmd)
	defer cancel()
	t, err := c.Target(actx, p.target)
	if isNotFound(err) {
		if err := c.CreateTarget(actx, admin.TargetSpec{Name: p.target}); err != nil {
			return steps, "", err
		}
		steps = append(steps, "created target "+p.target)
		t = admin.Target{Name: p.target}
	} else if err != nil {
		return steps, "", err
	}
	want := p.vg + "/" + p.lv
	found := false
	for _, lun := range t.LUNs {
		if lun.ID == p.lun {
			if lun.LV != want {
				return steps, "", fmt.Errorf("lun %d of %s is %s%s, not %s: pick another --lun, or remove it first", p.lun, p.target, lun.LV, lun.Path, want)
			}
			found = true
		}
	}
	if !found {
		// A LUN on a thin LV passes UNMAP on as discards, so what the
		// initiators free goes back to the pool.
		if err := c.AddLUN(actx, p.target, admin.LUN{ID: p.lun, LV: want, Thin: p.pool != ""}); err != nil {
			return steps, "", err
		}
		steps = append(steps, fmt.Sprintf("added lun %d on %s", p.lun, want))
	}
	for _, in := range p.initiators {
		if !containsFold(t.Initiators, in) {
			if err := c.AddInitiator(actx, p.target, in); err != nil {
				return steps, "", err
			}
			steps = append(steps, "allowed "+in)
		}
	}
	if p.user != "" && t.CHAPUser != p.user {
		r, err := s.setCHAP(actx, c, p.target, chapFlags{user: p.user})
		if err != nil {
			return steps, "", err
		}
		steps = append(steps, "set CHAP for user "+p.user)
		secret = r.Secret
	}
	return steps, secret, nil
}

func lvmNotFound(err error) bool { return err != nil && isErr(err, lvm.ErrNotFound) }

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (s *storage) nodeConfigCmd() *cobra.Command {
	var portal, target, user, secretFile string
	var lun uint64
	cmd := &cobra.Command{Use: "node-config", Short: "What each node needs: the agent's iscsi and fence resources, and the iscsiadm commands", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			iscsi := resource.Spec{Type: "iscsi", Name: "disk", Params: map[string]string{
				"portal": portal, "target": target, "lun": strconv.FormatUint(lun, 10), "fence": "true"}}
			if user != "" {
				iscsi.Params["user"], iscsi.Params["secret_file"] = user, secretFile
			}
			fence := resource.Spec{Type: "fence", Name: "fence", Params: map[string]string{"type": "scsi-pr", "devices": "${disk.device}"}}
			y, err := haconfig.Config{Resources: []resource.Spec{iscsi, fence}}.Marshal()
			if err != nil {
				return err
			}
			adm := []string{
				fmt.Sprintf("iscsiadm -m discovery -t sendtargets -p %s", portal),
				fmt.Sprintf("iscsiadm -m node -T %s -p %s -o update -n node.session.auth.authmethod -v CHAP", target, portal),
				fmt.Sprintf("iscsiadm -m node -T %s -p %s -o update -n node.session.auth.username -v %s", target, portal, user),
				fmt.Sprintf("iscsiadm -m node -T %s -p %s -o update -n node.session.auth.password -v \"$(cat %s)\"", target, portal, secretFile),
				fmt.Sprintf("iscsiadm -m node -T %s -p %s --login", target, portal),
			}
			if user == "" {
				adm = []string{adm[0], adm[4]}
			}
			out := struct {
				Agent    string   `json:"agent_yaml"`
				Iscsiadm []string `json:"iscsiadm"`
			}{string(y), adm}
			return s.print(cmd.OutOrStdout(), out, func(w io.Writer) {
				fmt.Fprintf(w, "# agent.yaml, on both nodes:\n%s\n# or by hand, on each node:\n%s\n", y, strings.Join(adm, "\n"))
			})
		}}
	f := cmd.Flags()
	f.StringVar(&portal, "portal", "", "target portal host:port as the nodes reach it")
	f.StringVar(&target, "target", "", "target IQN")
	f.Uint64Var(&lun, "lun", 0, "LUN id")
	f.StringVar(&user, "chap-user", "", "CHAP user")
	f.StringVar(&secretFile, "chap-secret-file", "/etc/tandem/chap.secret", "where the nodes keep the CHAP secret (0600)")
	_ = cmd.MarkFlagRequired("portal")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}
