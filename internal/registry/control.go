package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The control protocol is upstream Sandlock's: on a unix stream socket,
// one request per connection, each message a 4-byte big-endian length and
// that many bytes of JSON, at most MaxMessage. A request is
// {"v":1,"verb":"…","args":{}}; the answer {"v":1,"ok":true,"data":…} or
// {"v":1,"ok":false,"err":"…"}. Verbs: config and ports (upstream's),
// status and kill (ours).
const (
	ProtocolVersion = 1
	MaxMessage      = 64 << 10
)

// Deadline bounds a whole request, on both sides: a client that sends
// nothing, or reads nothing, is cut off, and never holds up another.
var Deadline = 2 * time.Second

// maxConns bounds the requests served at once.
const maxConns = 32

// Request is a control request.
type Request struct {
	V    int             `json:"v"`
	Verb string          `json:"verb"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is a control answer.
type Response struct {
	V    int             `json:"v"`
	OK   bool            `json:"ok"`
	Data json.RawMessage `json:"data,omitempty"`
	Err  string          `json:"err,omitempty"`
}

// serve accepts connections until the listener is closed.
func (e *Entry) serve(h Handler) {
	defer e.served.Done()
	for {
		c, err := e.ln.AcceptUnix()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: try again shortly rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		e.mu.Lock()
		if e.conns == nil || len(e.conns) >= maxConns {
			e.mu.Unlock()
			c.Close()
			continue
		}
		e.conns[c] = true
		e.served.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.served.Done()
			e.serveConn(c, h)
			e.mu.Lock()
			delete(e.conns, c)
			e.mu.Unlock()
			c.Close()
		}()
	}
}

// serveConn answers one request.
func (e *Entry) serveConn(c *net.UnixConn, h Handler) {
	c.SetDeadline(time.Now().Add(Deadline))
	if err := checkPeer(c); err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: err.Error()})
		return
	}
	body, err := readMessage(c)
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: "parse error: " + err.Error()})
		return
	}
	if req.V != ProtocolVersion {
		writeMessage(c, Response{V: ProtocolVersion, Err: fmt.Sprintf("unsupported protocol version: %d", req.V)})
		return
	}
	var data any
	switch req.Verb {
	case "config":
		b, err := h.Config()
		if err != nil {
			writeMessage(c, Response{V: ProtocolVersion, Err: "serialize error: " + err.Error()})
			return
		}
		data = json.RawMessage(b)
	case "ports":
		ports := map[string]int{}
		if h.Ports != nil {
			for v, r := range h.Ports() {
				ports[strconv.Itoa(v)] = r
			}
		}
		data = ports
	case "status":
		data = h.Status()
	case "kill":
		// Answered first: the end of the run closes this connection.
		writeMessage(c, Response{V: ProtocolVersion, OK: true, Data: json.RawMessage(`{"killed":true}`)})
		h.Kill()
		return
	default:
		writeMessage(c, Response{V: ProtocolVersion, Err: "unknown verb: " + req.Verb})
		return
	}
	b, err := json.Marshal(data)
	if err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: "serialize error: " + err.Error()})
		return
	}
	writeMessage(c, Response{V: ProtocolVersion, OK: true, Data: b})
}

// ownNNP is whether this process runs with no_new_privs.
var ownNNP = sync.OnceValue(func() bool { v, _ := noNewPrivs("self"); return v })

// checkPeer admits a client of this user (or root, who could reach the
// supervisor by other means anyway) that is no more confined than this
// process. The last check keeps a sandboxed program of the same user from
// ending or reading another sandbox through its control socket: Landlock
// does not cover connect(2) on a named unix socket, and a kill request
// would reach a supervisor its signal scoping keeps it from signalling.
// A process under no_new_privs when this one is not is taken to be
// confined: every sandbox, and Confine, set it.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	pidfd := -1
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			pidfd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	})
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if pidfd > 0 {
		defer unix.Close(pidfd)
	}
	if cred.Uid != uint32(os.Geteuid()) && cred.Uid != 0 {
		return errors.New("permission denied: the control socket serves its own user only")
	}
	if ownNNP() {
		return nil
	}
	if cred.Pid <= 0 {
		return errors.New("permission denied: the client's process is not visible")
	}
	nnp, err := noNewPrivs(strconv.Itoa(int(cred.Pid)))
	// The pid read may be recycled: the pidfd, taken at connect time,
	// says whether the process it names is still the one.
	if pidfd > 0 && unix.PidfdSendSignal(pidfd, 0, nil, 0) != nil {
		return errors.New("permission denied: the client is gone")
	}
	if err != nil || nnp {
		return errors.New("permission denied: a confined process may not control a sandbox")
	}
	return nil
}

// noNewPrivs reads the NoNewPrivs flag of /proc/<pid>/status.
func noNewPrivs(pid string) (bool, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return false, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\nNoNewPrivs:"))
	if !ok {
		return false, errors.New("no NoNewPrivs line")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	return strings.TrimSpace(string(line)) == "1", nil
}

// readMessage reads one length-prefixed message.
func readMessage(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxMessage {
		return nil, fmt.Errorf("message of %d bytes, more than %d", size, MaxMessage)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// writeMessage writes one length-prefixed message; one too large becomes
// an error answer.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		b, _ = json.Marshal(Response{V: ProtocolVersion, Err: fmt.Sprintf("response too large (%d bytes, max %d)", len(b), MaxMessage)})
	}
	msg := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(msg, uint32(len(b)))
	copy(msg[4:], b)
	_, err = w.Write(msg)
	return err
}

// Ask sends one request to the named sandbox's supervisor and returns the
// data of its answer. The server must be of this user (or root).
func Ask(name, verb string) (json.RawMessage, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	base, err := OpenBase(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w named %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	defer base.Close()
	return ask(base, name, verb)
}

func ask(base *Base, name, verb string) (json.RawMessage, error) {
	dir, err := unix.Openat(base.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, fmt.Errorf("%w named %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", name, os.NewSyscallError("open", err))
	}
	defer unix.Close(dir)
	return askDir(dir, name, verb)
}

// askDir sends a request to the control socket of the entry open as dir.
func askDir(dir int, name, verb string) (json.RawMessage, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: procPath(dir, sockFile), Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("sandbox %q does not answer (its supervisor is gone)", name)
		}
		return nil, fmt.Errorf("sandbox %q: %w", name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(Deadline))
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: peer credentials: %w", name, err)
	}
	if cred.Uid != uint32(os.Geteuid()) && cred.Uid != 0 {
		return nil, fmt.Errorf("sandbox %q: its control socket is served by uid %d: refusing to talk to it", name, cred.Uid)
	}
	if err := writeMessage(c, Request{V: ProtocolVersion, Verb: verb, Args: json.RawMessage("{}")}); err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", name, err)
	}
	body, err := readMessage(c)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("sandbox %q did not answer within %v", name, Deadline)
		}
		return nil, fmt.Errorf("sandbox %q: reading the answer: %w", name, err)
	}
	var resp Response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("sandbox %q: parse response: %w", name, err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("sandbox %q: %s", name, resp.Err)
	}
	return resp.Data, nil
}
