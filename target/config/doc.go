// Package config loads, defaults and validates the YAML configuration of
// tandem-target.
//
// The caller's duties:
//
//  1. Call Load with the path of the YAML file. It applies DefaultConfig,
//     resolves relative paths against the file's directory, validates every
//     key and reads the CHAP secrets from their files.
//  2. Treat any error as fatal: each message names the offending key (for
//     example "targets[0].luns[1].path") and says how to fix it.
//  3. Use Marshal to write a configuration (tandem-demo and the conformance
//     harness do); secrets are never written, only their file names.
//     Save writes one back crash-safely (temporary file, fsync, rename,
//     fsync of the directory, the previous file kept as .bak): the daemon
//     does after every admin API change, so the file stays the one source
//     of truth. WriteSecret and GenerateSecret are the home of CHAP secret
//     files.
//  4. Diff says what a reload changes, without secrets, for the log.
//
// iSCSI names follow RFC 7143 section 4.2.7; iSCSI negotiation limits follow
// RFC 7143 section 13; CHAP secret rules follow RFC 7143 section 12.1.3.
package config
