// Package negotiate is the initiator side of the iSCSI login phase
// (RFC 7143 sections 6, 7 and 11.12-11.13, CHAP from section 12.1.3) as a
// pure state machine: no sockets, no goroutines, no clock. Every key is
// settled by wire/text's key table and result functions, the same rules
// target/login answers with, so the two ends cannot disagree on a rule.
//
// The caller's duties, per connection:
//
//  1. Fill a Spec and call New; it refuses keys an initiator may not
//     offer in the operational stage.
//  2. Call Start(req) and write req.
//  3. Read a Login Response and call Step(resp, req). On an error close
//     the connection; unless done, write req and go to 3.
//  4. When done, read Result(): switch the reader and writer to the
//     negotiated digests and segment limits; the first command carries
//     Result().ExpCmdSN and the next expected StatSN is Result().StatSN+1.
package negotiate
