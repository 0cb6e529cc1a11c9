package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/ha/config"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // the resource types tandem-agent --check knows
	tconfig "github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/tools/importer"
	"github.com/tandem-ha/tandem/tools/importer/heartbeat"
	"github.com/tandem-ha/tandem/tools/importer/tgt"
)

// importReport is what an import prints (--json: as is).
type importReport struct {
	// Config is the written configuration file.
	Config string `json:"config"`
	// Secrets are the files written with mode 0600 (key, CHAP secrets).
	Secrets []string `json:"secrets"`
	// Check is "ok" or why the written file does not load here (scripts
	// or devices of the other machine may be missing on this one).
	Check    string             `json:"check"`
	Findings []importer.Finding `json:"findings"`
}

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import heartbeat|tgt",
		Short: "Convert another product's configuration into tandem's",
	}
	cmd.AddCommand(importHeartbeatCmd(), importTgtCmd())
	return cmd
}

func importHeartbeatCmd() *cobra.Command {
	var out, keyFile, hosts, qmgr string
	var addrs []string
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "heartbeat [DIR]",
		Short: "Convert heartbeat's ha.cf, haresources and authkeys (default /etc/ha.d) into agent.yaml and a key file",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "/etc/ha.d"
			if len(args) == 1 {
				dir = args[0]
			}
			dir, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			in, err := readHeartbeat(dir)
			if err != nil {
				return err
			}
			if in.Addresses, err = nodeAddresses(in.HaCf, hosts, addrs); err != nil {
				return err
			}
			in.MQQueueManager = qmgr
			if keyFile == "" {
				keyFile = filepath.Join(filepath.Dir(out), "authkey")
			}
			if in.KeyFile, err = filepath.Abs(keyFile); err != nil {
				return err
			}
			in.Rand = rand.Reader
			res, err := heartbeat.Convert(in)
			if err != nil {
				return fmt.Errorf("import %s: %w", dir, err)
			}
			if err := refuseOverwrite(out, force); err != nil {
				return err
			}
			if err := writeSecret(in.KeyFile, res.Key, force); err != nil {
				return err
			}
			if err := res.Config.WriteFile(out); err != nil {
				return err
			}
			rep := importReport{Config: out, Secrets: []string{in.KeyFile}, Check: "ok", Findings: res.Findings}
			// What tandem-agent --check runs, for each node.
			for _, n := range res.Config.Nodes {
				if _, err := config.Load(out, config.Options{Node: n}); err != nil {
					rep.Check = err.Error()
					break
				}
			}
			return printImport(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "agent.yaml", "agent configuration to write")
	f.StringVar(&keyFile, "key-file", "", "key file to write (mode 0600) and name in key_file (default: authkey beside --output)")
	f.StringVar(&hosts, "hosts", "/etc/hosts", "hosts file that gives ucast addresses their node (empty: none)")
	f.StringArrayVar(&addrs, "address", nil, "NODE=IP: the node of a ucast address (repeatable)")
	f.StringVar(&qmgr, "mq-qmgr", "", "queue manager of a bare `mq` resource: import it as tandem's mq resource instead of a script")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&force, "force", false, "overwrite existing output files")
	return cmd
}

func importTgtCmd() *cobra.Command {
	var out, secrets string
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "tgt [FILE]",
		Short: "Convert tgt's targets.conf (default " + tgt.DefaultPath + ") into target.yaml and CHAP secret files",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := tgt.DefaultPath
			if len(args) == 1 {
				file = args[0]
			}
			file, err := filepath.Abs(file)
			if err != nil {
				return err
			}
			res, err := tgt.Convert(tgt.Input{FS: os.DirFS("/"), Path: file, SecretDir: secrets})
			if err != nil {
				return fmt.Errorf("import %s: %w", file, err)
			}
			if err := refuseOverwrite(out, force); err != nil {
				return err
			}
			rep := importReport{Config: out, Secrets: []string{}, Check: "ok", Findings: res.Findings}
			for _, s := range res.Secrets {
				p := s.Path
				if !filepath.IsAbs(p) { // relative to the config file, as Load reads it
					p = filepath.Join(filepath.Dir(out), p)
				}
				if err := writeSecret(p, s.Data, force); err != nil {
					return err
				}
				rep.Secrets = append(rep.Secrets, p)
			}
			b, err := res.Config.Marshal()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w: check that its directory exists and is writable", out, err)
			}
			if _, err := tconfig.Load(out); err != nil {
				rep.Check = err.Error()
			}
			return printImport(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "target.yaml", "target configuration to write")
	f.StringVar(&secrets, "secrets-dir", "secrets", "directory of the CHAP secret files (mode 0600), relative to --output's directory unless absolute")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&force, "force", false, "overwrite existing output files")
	return cmd
}

// readHeartbeat reads what heartbeat.Convert needs from dir.
func readHeartbeat(dir string) (heartbeat.Input, error) {
	in := heartbeat.Input{Dir: dir}
	read := func(name string, required bool) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && !required {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read %w: pass heartbeat's directory (/etc/ha.d)", err)
		}
		return string(b), nil
	}
	var err error
	if in.HaCf, err = read(heartbeat.HaCf, true); err != nil {
		return in, err
	}
	if in.Haresources, err = read(heartbeat.Haresources, false); err != nil {
		return in, err
	}
	if in.Authkeys, err = read(heartbeat.Authkeys, true); err != nil {
		return in, err
	}
	st, err := os.Stat(filepath.Join(dir, heartbeat.Authkeys))
	if err != nil {
		return in, err
	}
	in.AuthkeysMode = st.Mode()
	ents, err := os.ReadDir(filepath.Join(dir, heartbeat.ResourceDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return in, fmt.Errorf("read %s: %w", heartbeat.ResourceDir, err)
	}
	for _, e := range ents {
		in.Scripts = append(in.Scripts, e.Name())
	}
	return in, nil
}

// nodeAddresses maps IP -> node from a hosts file (names that are nodes of
// ha.cf) and NODE=IP flags, which win.
func nodeAddresses(haCf, hostsFile string, flags []string) (map[string]string, error) {
	var nodes []string
	for _, l := range importer.SplitLines(haCf) {
		if l.Fields[0] == "node" {
			nodes = append(nodes, l.Fields[1:]...)
		}
	}
	m := map[string]string{}
	if hostsFile != "" {
		f, err := os.Open(hostsFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("hosts: %w: pass --hosts '' to skip it", err)
		}
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line, _, _ := strings.Cut(sc.Text(), "#")
				fields := strings.Fields(line)
				for _, name := range fields[min(1, len(fields)):] {
					if slices.Contains(nodes, name) {
						m[fields[0]] = name
					}
				}
			}
		}
	}
	for _, a := range flags {
		node, ip, ok := strings.Cut(a, "=")
		if !ok || node == "" || ip == "" {
			return nil, fmt.Errorf("--address %q: write NODE=IP, e.g. --address MQSlave=10.0.0.2", a)
		}
		m[ip] = node
	}
	return m, nil
}

func refuseOverwrite(path string, force bool) error {
	if force {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: pass --force to overwrite it, or --output elsewhere", path)
	}
	return nil
}

// writeSecret writes data to path with mode 0600 from creation on.
func writeSecret(path string, data []byte, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("secret %s: %w", path, err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("secret %w: pass --force to overwrite it", err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return fmt.Errorf("secret %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("secret %s: %w", path, err)
	}
	return f.Close()
}

func printImport(w io.Writer, rep importReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "wrote %s\n", rep.Config)
	for _, s := range rep.Secrets {
		fmt.Fprintf(w, "wrote %s (mode 0600, not shown)\n", s)
	}
	if rep.Check == "ok" {
		fmt.Fprintln(w, "check: the written configuration loads")
	} else {
		fmt.Fprintf(w, "check: the written configuration does not load here: %s\n", rep.Check)
	}
	if len(rep.Findings) > 0 {
		fmt.Fprintf(w, "\n%d findings:\n", len(rep.Findings))
	}
	for _, f := range rep.Findings {
		fmt.Fprintln(w, f.String())
	}
	return nil
}
