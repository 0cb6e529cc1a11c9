// Package ha will hold tandem-agent, the node agent of a two-node tandem
// cluster: heartbeats over redundant links, the failover state machine
// (a pure core driven by Tick and link events), the resources it starts
// and stops (iSCSI target, virtual IP, MQ), and fencing before takeover.
package ha
