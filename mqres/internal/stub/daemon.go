package stub

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is the queue manager: amqzxma0 -m QM. It holds the data path's
// lock while alive, publishes its status on the data path, serves put/get
// and end requests on the node-local socket.
func daemon(e env, args []string) int {
	if len(args) != 2 || args[0] != "-m" {
		return rcBadArgs
	}
	qm := args[1]
	s, ok := e.lookup(qm)
	if !ok {
		return rcNameError
	}
	data := dataPath(e, s)
	lock, err := os.OpenFile(lockFile(data), os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqzxma0:", err)
		return rcStorage
	}
	// dspmq probes the lock briefly: retry for a moment before giving up.
	for i := 0; ; i++ {
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			break
		}
		if i == 100 {
			fmt.Fprintln(os.Stderr, "amqzxma0: queue manager is active elsewhere")
			return rcActiveNoSb
		}
		time.Sleep(10 * time.Millisecond)
	}
	set := func(st string) {
		if err := writeRecord(data, record{Status: st, Host: e.host, PID: os.Getpid()}); err != nil {
			fmt.Fprintln(os.Stderr, "amqzxma0: write status:", err)
			os.Exit(rcStorage)
		}
	}
	set("STARTING")

	// The critical process manager child; IBM's sweep kills it first.
	pr, pw, err := os.Pipe()
	if err != nil {
		return rcUnexpected
	}
	self, _ := os.Executable()
	child := exec.Command(self, "-m", qm)
	child.Args[0] = "amqzmuc0"
	child.Stdin = pr
	if err := child.Start(); err != nil {
		return rcUnexpected
	}
	pr.Close()
	go child.Wait()

	logDir, err := logPath(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqzxma0:", err)
		return rcStorage
	}
	q, err := openQueues(filepath.Join(logDir, "queues.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqzxma0: log replay:", err)
		return rcStorage
	}
	os.MkdirAll(filepath.Dir(e.sock(qm)), 0o755)
	os.Remove(e.sock(qm))
	ln, err := net.Listen("unix", e.sock(qm))
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqzxma0:", err)
		return rcUnexpected
	}
	d := &qmgr{e: e, q: q, running: make(chan struct{}), end: make(chan string, 1)}
	go d.serve(ln)
	// The TCP listener (qm.ini TCP: Port=1414) speaks the same protocol to
	// remote clients; it starts and ends with the queue manager.
	var tcp net.Listener
	if port, err := listenerPort(data); err != nil || port != "" {
		if err == nil {
			tcp, err = net.Listen("tcp", ":"+port)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "amqzxma0: TCP listener:", err)
			return rcUnexpected
		}
		go d.serve(tcp)
	}

	var mode string
	select {
	case <-time.After(e.faultDuration("slow_start")):
		set("RUNNING")
		close(d.running)
		if c := e.faultDuration("crash_after"); c > 0 {
			go func() { time.Sleep(c); os.Exit(99) }() // no cleanup: a crash
		}
		mode = <-d.end
	case mode = <-d.end: // ended during restart recovery
	}
	switch mode {
	case "c", "w":
		set("QUIESCING")
	case "i":
		set("ENDING IMMEDIATELY")
	case "p":
		set("ENDING PREEMPTIVELY")
	}
	ln.Close()
	if tcp != nil {
		tcp.Close()
	}
	os.Remove(e.sock(qm))
	pw.Close() // amqzmuc0 follows
	final := map[string]string{"c": "ENDED NORMALLY", "w": "ENDED NORMALLY", "i": "ENDED IMMEDIATELY", "p": "ENDED PREEMPTIVELY"}[mode]
	set(final)
	return rcOK
}

type qmgr struct {
	e       env
	q       *queues
	running chan struct{}
	end     chan string
}

func (d *qmgr) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go d.conn(c)
	}
}

// conn speaks the stand-in's line protocol: PUT q b64, GET q, END mode.
func (d *qmgr) conn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "END" && len(f) == 2 {
			if d.e.faultList("refuse_end")[f[1]] {
				fmt.Fprintln(c, "OK") // accepted, and ignored
				continue
			}
			fmt.Fprintln(c, "OK")
			select {
			case d.end <- f[1]:
			default:
			}
			continue
		}
		select {
		case <-d.running:
		default:
			fmt.Fprintln(c, "ERR 2059 MQRC_Q_MGR_NOT_AVAILABLE")
			continue
		}
		switch {
		case f[0] == "PUT" && len(f) == 3:
			msg, err := base64.StdEncoding.DecodeString(f[2])
			if err != nil {
				fmt.Fprintln(c, "ERR 2010 MQRC_DATA_LENGTH_ERROR")
				continue
			}
			if err := d.q.put(f[1], msg); err != nil {
				fmt.Fprintln(c, "ERR 2102 MQRC_RESOURCE_PROBLEM", err)
				continue
			}
			fmt.Fprintln(c, "OK")
		case f[0] == "GET" && len(f) == 2:
			msg, ok, err := d.q.get(f[1])
			switch {
			case err != nil:
				fmt.Fprintln(c, "ERR 2102 MQRC_RESOURCE_PROBLEM", err)
			case !ok:
				fmt.Fprintln(c, "ERR 2033 MQRC_NO_MSG_AVAILABLE")
			default:
				fmt.Fprintln(c, "MSG", base64.StdEncoding.EncodeToString(msg))
			}
		default:
			fmt.Fprintln(c, "ERR 2046 unknown request")
		}
	}
}

// queues is the persistent store: an append-only log on the queue manager's
// log path, fsync'ed before every acknowledgement, as MQ logs persistent
// messages before MQPUT returns.
type queues struct {
	mu  sync.Mutex
	f   *os.File
	msg map[string][][]byte
}

func openQueues(path string) (*queues, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	q := &queues{f: f, msg: map[string][][]byte{}}
	good := replay(b, q.msg)
	// Drop a torn tail so the next record starts on a line boundary.
	if err := f.Truncate(int64(good)); err != nil {
		return nil, err
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		return nil, err
	}
	return q, nil
}

// replay applies complete records and returns the length of the good prefix.
func replay(b []byte, msg map[string][][]byte) int {
	good := 0
	for {
		i := strings.IndexByte(string(b[good:]), '\n')
		if i < 0 {
			return good
		}
		rec, ok := decodeRecord(string(b[good : good+i]))
		if !ok {
			return good
		}
		switch rec.op {
		case "P":
			msg[rec.queue] = append(msg[rec.queue], rec.data)
		case "G":
			if len(msg[rec.queue]) > 0 {
				msg[rec.queue] = msg[rec.queue][1:]
			}
		}
		good += i + 1
	}
}

func (q *queues) append(line string) error {
	if _, err := q.f.WriteString(line); err != nil {
		return err
	}
	return q.f.Sync()
}

func (q *queues) put(queue string, m []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.append(encodeRecord("P", queue, m)); err != nil {
		return err
	}
	q.msg[queue] = append(q.msg[queue], m)
	return nil
}

// get is a destructive get under syncpoint-free semantics: the removal is
// logged and synced before the message is handed out.
func (q *queues) get(queue string) ([]byte, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msg[queue]) == 0 {
		return nil, false, nil
	}
	if err := q.append(encodeRecord("G", queue, nil)); err != nil {
		return nil, false, err
	}
	m := q.msg[queue][0]
	q.msg[queue] = q.msg[queue][1:]
	return m, true, nil
}
