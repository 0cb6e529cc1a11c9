package stub

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoMessage is MQRC_NO_MSG_AVAILABLE (2033).
var ErrNoMessage = errors.New("MQRC_NO_MSG_AVAILABLE (2033)")

// Client talks to the queue manager qm of the node whose prefix is Prefix.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to qm's local socket under prefix.
func Dial(prefix, qm string) (*Client, error) {
	c, err := net.DialTimeout("unix", filepath.Join(prefix, "sockets", qm+".sock"), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: MQRC_Q_MGR_NOT_AVAILABLE (2059): %w", qm, err)
	}
	return &Client{conn: c, r: bufio.NewReader(c)}, nil
}

// NewClient speaks the protocol over c, e.g. a TCP connection to the
// queue manager's listener (qm.ini TCP: Port).
func NewClient(c net.Conn) *Client { return &Client{conn: c, r: bufio.NewReader(c)} }

func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) call(req string) (string, error) {
	if _, err := io.WriteString(c.conn, req+"\n"); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Put sends a persistent message; nil means it is on disk.
func (c *Client) Put(queue string, msg []byte) error {
	resp, err := c.call("PUT " + queue + " " + base64.StdEncoding.EncodeToString(msg))
	if err != nil {
		return err
	}
	if resp != "OK" {
		return errors.New(resp)
	}
	return nil
}

// Get removes and returns the oldest message.
func (c *Client) Get(queue string) ([]byte, error) {
	resp, err := c.call("GET " + queue)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resp, "ERR 2033") {
		return nil, ErrNoMessage
	}
	b64, ok := strings.CutPrefix(resp, "MSG ")
	if !ok {
		return nil, errors.New(resp)
	}
	return base64.StdEncoding.DecodeString(b64)
}

// putCmd: mqstub put QM QUEUE [MSG...]; messages from stdin lines when none.
func putCmd(e env, out io.Writer, args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mqstub put QM QUEUE [MSG...]")
		return rcBadArgs
	}
	c, err := Dial(e.prefix, args[0])
	if err != nil {
		fmt.Fprintln(out, err)
		return 2059 & 0xff
	}
	defer c.Close()
	msgs := args[2:]
	if len(msgs) == 0 {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			msgs = append(msgs, sc.Text())
		}
	}
	for _, m := range msgs {
		if err := c.Put(args[1], []byte(m)); err != nil {
			fmt.Fprintln(out, "put failed:", err)
			return 1
		}
		fmt.Fprintln(out, "acked", m)
	}
	return 0
}

// getCmd: mqstub get QM QUEUE prints every message until the queue is empty.
func getCmd(e env, out io.Writer, args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mqstub get QM QUEUE")
		return rcBadArgs
	}
	c, err := Dial(e.prefix, args[0])
	if err != nil {
		fmt.Fprintln(out, err)
		return 2059 & 0xff
	}
	defer c.Close()
	for {
		m, err := c.Get(args[1])
		if errors.Is(err, ErrNoMessage) {
			fmt.Fprintln(out, "no more messages")
			return 0
		}
		if err != nil {
			fmt.Fprintln(out, "get failed:", err)
			return 1
		}
		fmt.Fprintf(out, "message <%s>\n", m)
	}
}
