// Package mqres will hold the IBM MQ resource for tandem-agent: the OCF
// resource agent that starts, stops and monitors a queue manager on
// tandem-backed storage, and an MQ stand-in for tests without IBM MQ.
package mqres
