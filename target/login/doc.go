// Package login is the target side of the iSCSI login phase (RFC 7143
// sections 6, 7 and 11.12-11.13, CHAP from section 12.1.3) as a pure state
// machine: no sockets, no goroutines, no clock.
//
// The fabric's duties, per connection:
//
//  1. Build one Config per portal (it may be shared by all connections) and
//     call New(cfg, remoteAddr) when a connection is accepted.
//  2. Read a PDU. While the login runs, the data segment limit is 8192
//     bytes and digests are off.
//  3. Call Step(req, resp) and write resp, whatever the Outcome.
//  4. On Continue go to 2. On Failed close the connection after writing
//     resp. On Done read Result(): switch the reader and writer to the
//     negotiated digests and segment limits and enter full feature phase;
//     the first command carries Result().ExpCmdSN and the first response
//     Result().StatSN.
//
// A non-login PDU during login is answered with status 0x020b and Failed.
package login
