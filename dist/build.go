package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

//go:embed systemd config scripts install.sh
var assets embed.FS

// Options of one release build.
type Options struct {
	Root    string    // repository root (go.work)
	Out     string    // output directory, emptied first
	Version string    // git describe --always --dirty
	Commit  string    // git rev-parse HEAD
	Epoch   time.Time // SOURCE_DATE_EPOCH: the commit's time
	Go      string    // go command; "" = "go"
	Log     io.Writer // progress; nil = discard
}

// Result names what Build wrote, relative to Options.Out.
type Result struct {
	Bundle   string
	Packages []string
}

// Build makes the release into o.Out: bin/ (the static binaries),
// packages/ (deb and rpm), the bundle tarball and SHA256SUMS over them.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	pkgVersion, err := PackageVersion(o.Version, o.Epoch)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, fmt.Errorf("dist: empty %s: %w", o.Out, err)
	}
	stage := filepath.Join(o.Out, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	if err := buildBinaries(ctx, o, stage); err != nil {
		return nil, err
	}
	man, err := genDocs(ctx, o, stage)
	if err != nil {
		return nil, err
	}
	if err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		return writeFile(filepath.Join(stage, p), b, 0o644)
	}); err != nil {
		return nil, fmt.Errorf("dist: stage assets: %w", err)
	}
	ocf, err := os.ReadFile(filepath.Join(o.Root, "mqres", "ocf", "ibmmq"))
	if err != nil {
		return nil, fmt.Errorf("dist: the OCF wrapper: %w (run from the repository root, or pass --root)", err)
	}
	if err := writeFile(filepath.Join(stage, "ocf", "ibmmq"), ocf, 0o755); err != nil {
		return nil, err
	}

	res := &Result{}
	pkgDir := filepath.Join(o.Out, "packages")
	for _, p := range Packages(man) {
		for _, format := range []string{"deb", "rpm"} {
			name, err := writePackage(p, format, pkgVersion, o.Epoch, stage, pkgDir)
			if err != nil {
				return nil, err
			}
			res.Packages = append(res.Packages, "packages/"+name)
			fmt.Fprintln(o.Log, "package", name)
		}
	}
	for _, b := range Bundled {
		if err := copyFile(filepath.Join(stage, "bin", b), filepath.Join(o.Out, "bin", b), 0o755); err != nil {
			return nil, err
		}
	}
	res.Bundle = "tandem-" + o.Version + "-linux-amd64.tar.gz"
	if err := writeBundle(o, stage, res); err != nil {
		return nil, err
	}
	fmt.Fprintln(o.Log, "bundle", res.Bundle)
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	sums, err := sha256Sums(o.Out, []string{"bin", "packages", res.Bundle})
	if err != nil {
		return nil, err
	}
	return res, os.WriteFile(filepath.Join(o.Out, "SHA256SUMS"), sums, 0o644)
}

// buildBinaries: static (no cgo), no paths of this machine (-trimpath),
// no VCS stamp of the go command and an empty build id (both vary), the
// version and commit stamped instead.
func buildBinaries(ctx context.Context, o Options, stage string) error {
	const v = "github.com/tandem-ha/tandem/internal/version."
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X " + v + "Version=" + o.Version + " -X " + v + "Commit=" + o.Commit,
		"-o", filepath.Join(stage, "bin") + "/"}
	for _, b := range Binaries {
		args = append(args, b.Pkg)
	}
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dist: go build: %w\n%s", err, out)
	}
	return nil
}

// genDocs runs each cobra binary's hidden gen-docs (the host runs the
// linux/amd64 binaries it just built) and gzips the man pages without a
// name or time in the header.
func genDocs(ctx context.Context, o Options, stage string) (map[string][]string, error) {
	man := map[string][]string{}
	for _, b := range Binaries {
		if !b.Cobra {
			continue
		}
		dir := filepath.Join(stage, "doc", b.Name)
		cmd := exec.CommandContext(ctx, filepath.Join(stage, "bin", b.Name), "gen-docs", dir)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.Epoch.Unix(), 10))
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dist: %s gen-docs: %w\n%s", b.Name, err, out)
		}
		pages, err := filepath.Glob(filepath.Join(dir, "man", "*.1"))
		if err != nil || len(pages) == 0 {
			return nil, fmt.Errorf("dist: %s gen-docs wrote no man page into %s", b.Name, dir)
		}
		for _, p := range pages {
			raw, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("dist: %w", err)
			}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(raw)
			zw.Close()
			if err := writeFile(p+".gz", buf.Bytes(), 0o644); err != nil {
				return nil, err
			}
			man[b.Name] = append(man[b.Name], filepath.Base(p))
		}
	}
	return man, nil
}

func writePackage(p Package, format, version string, mtime time.Time, stage, outDir string) (string, error) {
	info := &nfpm.Info{
		Name: p.Name, Arch: "amd64", Platform: "linux", Version: version, VersionSchema: "none",
		Release: "1", Maintainer: "tandem <tandem@localhost>", Description: p.Description,
		Vendor: "tandem", Section: "admin", Priority: "optional", MTime: mtime,
	}
	info.RPM.BuildHost = "tandem-dist" // not the build machine's name
	info.RPM.Summary = p.Description
	for _, f := range p.Files {
		c := &files.Content{Destination: f.Dst, Type: f.Type, Packager: f.Packager,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: os.FileMode(f.Mode), MTime: mtime}}
		switch f.Type {
		case typeSymlink:
			c.Source = f.Src
		case typeDir:
		default:
			c.Source = filepath.Join(stage, f.Src)
		}
		info.Contents = append(info.Contents, c)
	}
	if p.Unit != "" {
		dir := filepath.Join(stage, "scripts", p.Name)
		for _, s := range []struct {
			name string
			dst  *string
		}{{"postinstall.sh", &info.Scripts.PostInstall}, {"preremove.sh", &info.Scripts.PreRemove}, {"postremove.sh", &info.Scripts.PostRemove}} {
			b, err := assets.ReadFile("scripts/" + s.name)
			if err != nil {
				return "", fmt.Errorf("dist: %w", err)
			}
			path := filepath.Join(dir, s.name)
			if err := writeFile(path, bytes.ReplaceAll(b, []byte("@UNIT@"), []byte(p.Unit)), 0o755); err != nil {
				return "", err
			}
			*s.dst = path
		}
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("dist: package %s (%s): %w", p.Name, format, err)
	}
	name := packager.ConventionalFileName(info)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	var buf bytes.Buffer
	if err := packager.Package(info, &buf); err != nil {
		return "", fmt.Errorf("dist: package %s (%s): %w", p.Name, format, err)
	}
	return name, writeFile(filepath.Join(outDir, name), buf.Bytes(), 0o644)
}

// writeBundle writes the offline bundle: install.sh, packages/, bin/,
// samples/ and SHA256SUMS over them, under one top directory, entries
// sorted, every time the epoch, owner root.
func writeBundle(o Options, stage string, res *Result) error {
	top := strings.TrimSuffix(res.Bundle, ".tar.gz")
	entries := map[string]string{ // path in the bundle -> file on disk
		"install.sh": filepath.Join(stage, "install.sh"),
	}
	for _, p := range res.Packages {
		entries[p] = filepath.Join(o.Out, p)
	}
	for _, b := range Bundled {
		entries["bin/"+b] = filepath.Join(stage, "bin", b)
	}
	for _, c := range []string{"target.yaml", "agent.yaml"} {
		entries["samples/"+c] = filepath.Join(stage, "config", c)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	var sums bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(entries[n])
		if err != nil {
			return fmt.Errorf("dist: bundle: %w", err)
		}
		h := sha256.Sum256(b)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(h[:]), n)
	}

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Size: size, Typeflag: typ, ModTime: o.Epoch,
			Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	dirs := map[string]bool{}
	all := append(slices.Clone(names), "SHA256SUMS")
	slices.Sort(all)
	for _, n := range all {
		for d := filepath.Dir(n); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	if err := tw.WriteHeader(hdr(top+"/", 0o755, 0, tar.TypeDir)); err != nil {
		return fmt.Errorf("dist: bundle: %w", err)
	}
	written := map[string]bool{}
	for _, n := range all {
		if d := filepath.Dir(n); d != "." && !written[d] {
			written[d] = true
			if err := tw.WriteHeader(hdr(top+"/"+d+"/", 0o755, 0, tar.TypeDir)); err != nil {
				return fmt.Errorf("dist: bundle: %w", err)
			}
		}
		var b []byte
		if n == "SHA256SUMS" {
			b = sums.Bytes()
		} else {
			var err error
			if b, err = os.ReadFile(entries[n]); err != nil {
				return fmt.Errorf("dist: bundle: %w", err)
			}
		}
		mode := int64(0o644)
		if strings.HasPrefix(n, "bin/") || n == "install.sh" {
			mode = 0o755
		}
		if err := tw.WriteHeader(hdr(top+"/"+n, mode, int64(len(b)), tar.TypeReg)); err != nil {
			return fmt.Errorf("dist: bundle: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("dist: bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("dist: bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("dist: bundle: %w", err)
	}
	return writeFile(filepath.Join(o.Out, res.Bundle), buf.Bytes(), 0o644)
}

// sha256Sums lists every regular file under the given paths of dir,
// sorted, in sha256sum's format.
func sha256Sums(dir string, paths []string) ([]byte, error) {
	var names []string
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(dir, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			names = append(names, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dist: SHA256SUMS: %w", err)
		}
	}
	slices.Sort(names)
	var out bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("dist: SHA256SUMS: %w", err)
		}
		h := sha256.Sum256(b)
		fmt.Fprintf(&out, "%s  %s\n", hex.EncodeToString(h[:]), n)
	}
	return out.Bytes(), nil
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	return os.Chmod(path, mode)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	return writeFile(dst, b, mode)
}
