//go:build linux

package registry

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sandlock-go/sandlock/internal/procfs"
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

// serve accepts connections until the entry is closed, and then closes
// the listening socket. It blocks in accept(2) on a thread of its own: a
// socket in the runtime's poller would have to be closed by Close, which
// wakes this goroutine on Close's time (a wake-up of another CPU at the end
// of every run), while Close's shutdown(2) makes the kernel return the
// blocked accept (EINVAL) without anyone waiting for it.
func (e *Entry) serve(h Handler) {
	defer unix.Close(e.sock)
	for {
		fd, _, err := unix.Accept4(e.sock, unix.SOCK_CLOEXEC)
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if closed {
			if err == nil {
				unix.Close(fd)
			}
			return
		}
		switch err {
		case nil:
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// EMFILE and the like: try again shortly rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f := os.NewFile(uintptr(fd), sockFile)
		nc, err := net.FileConn(f)
		f.Close() // FileConn holds a duplicate
		if err != nil {
			continue
		}
		c := nc.(*net.UnixConn)
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
	if err := checkConnect(c); err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: err.Error()})
		return
	}
	body, senders, err := readRequest(c)
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: "parse error: " + err.Error()})
		return
	}
	if err := checkSenders(senders, req.Args); err != nil {
		writeMessage(c, Response{V: ProtocolVersion, Err: err.Error()})
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

// token proves that a request made from this very process comes from this
// package's own client (Ask, Kill) and not from a thread of the process
// acting for a sandboxed program, as the supervisor's confined helpers do
// for the program's connect and send calls. No sandboxed program can read
// it: it may neither trace the supervisor nor read its memory.
var token = sync.OnceValue(func() string {
	var b [16]byte
	for i := range 2 {
		v := rand.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
})

// checkConnect admits a connection from this user, or from root (who
// could reach the supervisor by other means anyway).
func checkConnect(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if cred.Uid != uint32(os.Geteuid()) && cred.Uid != 0 {
		return errors.New("permission denied: the control socket serves its own user only")
	}
	return nil
}

// checkSenders admits a request whose every part was sent by a process no
// more confined than this one. The kernel stamps each message with its
// sender (SO_PASSCRED), which is the program itself even when its
// supervisor made the connection for it. This keeps a sandboxed program of
// the same user from ending or reading another sandbox through its control
// socket: Landlock does not cover connect(2) to a named unix socket, and a
// kill request would reach a supervisor its signal scoping keeps it from
// signalling. A process under no_new_privs, when this one is not, is taken
// to be confined: every sandbox, and Confine, set it. A request from this
// process itself must carry its token.
func checkSenders(senders []unix.Ucred, args json.RawMessage) error {
	if len(senders) == 0 {
		return errors.New("permission denied: the request carries no credentials")
	}
	self := int32(os.Getpid())
	for _, s := range senders {
		if s.Uid != uint32(os.Geteuid()) && s.Uid != 0 {
			return errors.New("permission denied: the control socket serves its own user only")
		}
		if s.Pid == self {
			var a struct {
				Token string `json:"token"`
			}
			json.Unmarshal(args, &a)
			if a.Token != token() {
				return errors.New("permission denied: a confined process may not control a sandbox")
			}
			continue
		}
		if ownNNP() {
			continue
		}
		if s.Pid <= 0 {
			return errors.New("permission denied: the client's process is not visible")
		}
		if nnp, err := noNewPrivs(strconv.Itoa(int(s.Pid))); err != nil || nnp {
			return errors.New("permission denied: a confined process may not control a sandbox")
		}
	}
	return nil
}

// noNewPrivs reads the NoNewPrivs flag of /proc/<pid>/status.
func noNewPrivs(pid string) (bool, error) {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return false, err
	}
	st, err := procfs.ReadStatus(n)
	if err != nil {
		return false, err
	}
	v, err := st.Field("NoNewPrivs")
	return v == "1", err
}

// readRequest reads one length-prefixed message and the credentials of
// every process that sent a part of it.
func readRequest(c *net.UnixConn) ([]byte, []unix.Ucred, error) {
	var senders []unix.Ucred
	var buf []byte
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)*4)
	want := 4
	for len(buf) < want {
		chunk := make([]byte, min(want-len(buf), 64<<10))
		n, oobn, _, _, err := c.ReadMsgUnix(chunk, oob)
		if n > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			got := false
			if perr == nil {
				for _, m := range msgs {
					if cred, err := unix.ParseUnixCredentials(&m); err == nil {
						senders = append(senders, *cred)
						got = true
					}
				}
			}
			if !got {
				senders = append(senders, unix.Ucred{Pid: -1, Uid: ^uint32(0)})
			}
			buf = append(buf, chunk[:n]...)
		}
		if err != nil {
			return nil, nil, err
		}
		if n == 0 {
			return nil, nil, io.ErrUnexpectedEOF
		}
		if want == 4 && len(buf) >= 4 {
			size := binary.BigEndian.Uint32(buf)
			if size > MaxMessage {
				return nil, nil, fmt.Errorf("message of %d bytes, more than %d", size, MaxMessage)
			}
			want = 4 + int(size)
		}
	}
	return buf[4:], senders, nil
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
	args := json.RawMessage("{}")
	if cred.Pid == int32(os.Getpid()) {
		// A sandbox of this very process: prove the request is ours.
		args, _ = json.Marshal(map[string]string{"token": token()})
	}
	if err := writeMessage(c, Request{V: ProtocolVersion, Verb: verb, Args: args}); err != nil {
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
