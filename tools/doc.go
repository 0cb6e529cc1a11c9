// Package tools will hold tandemctl, the provisioning and status CLI: it
// talks to tandem-target's admin socket and tandem-agent to create
// targets and LUNs, manage CHAP credentials and show sessions and
// cluster state.
package tools
