// Package stub is a TEST DOUBLE of IBM MQ's command-line contract, not MQ:
// crtmqm, addmqinf, dspmqinf, strmqm, endmqm and dspmq with IBM's output
// formats and exit codes, a queue manager "process" (amqzxma0 with an
// amqzmuc0 child, as the kill sweep expects) and a tiny persistent queue that
// fsyncs each message to the log path before acknowledging it.
//
// Layout, as MQ's: node-local files under the prefix ($MQSTUB_PREFIX,
// default /var/mqm): mqs.ini, sockets/QM.sock, mqstub.faults, mqstub.log.
// Shared files under the queue manager's data path: qm.ini, qmstatus (the
// state a second node reads) and qmstatus.lock, flock'ed by the running
// queue manager so that a crash releases it as MQ's file locks do. The node
// name is $MQSTUB_HOST (default the hostname). A `TCP:` stanza with
// `Port=1414` in qm.ini makes the queue manager also serve put/get on that
// TCP port while it runs (MQ's listener started with the queue manager).
//
// Faults ($prefix/mqstub.faults, key=value lines, read at each use):
//
//	hang=dspmq,strmqm,endmqm   these commands never return
//	slow_start=3s              the queue manager stays STARTING that long and
//	                           strmqm returns while it is STARTING
//	refuse_end=i,p             endmqm modes the queue manager ignores (the
//	                           waiting modes -i and -w then never return)
//	crash_after=2s             the queue manager dies (exit, no cleanup) that
//	                           long after reaching RUNNING
package stub
