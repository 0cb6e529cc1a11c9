// Package internal roots the helpers that several tandem modules share
// (unixsock). Go's internal rule goes by import path, so every module under
// github.com/tandem-ha/tandem may import them and nothing outside may.
package internal
