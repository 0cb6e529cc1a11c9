// Package dist builds tandem's release: static binaries stamped with the
// version (internal/version), deb and rpm packages made with nfpm, and the
// offline bundle tandem-VERSION-linux-amd64.tar.gz with install.sh. Run it
// through `make dist` (cmd/tandem-dist).
//
// What ships where is one table, Packages; the files it names live beside
// it: systemd/ (hardened units), config/ (the default configs, kept across
// upgrades as config|noreplace), scripts/ (maintainer scripts, never
// starting a daemon) and install.sh. The MQ stand-in and every other test
// double are never built here.
//
// Reproducible: one SOURCE_DATE_EPOCH (the commit's time) dates every file
// in the packages and the tarball, entries are sorted, gzip headers carry
// no time or name, and the binaries are built with -trimpath and an empty
// build id, so two runs on one commit give the same SHA256SUMS.
package dist
