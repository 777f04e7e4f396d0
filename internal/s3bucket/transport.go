package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The defaults of the timeouts in Options.
const (
	// DefaultHeaderTimeout is the default of Options.HeaderTimeout.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout is the default of Options.IdleTimeout.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultTLSHandshakeTimeout is the default of
	// Options.TLSHandshakeTimeout.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// dialTimeout bounds connecting to the store.
	dialTimeout = 10 * time.Second
)

// timeout returns d, or def if d is 0, or 0 (no limit) if d is negative.
func timeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// stallError is the error of a request that made no progress for a while.
// It is a net.Error whose Timeout is true, so that the SDK's retryer retries
// it like a dropped connection.
type stallError struct {
	what  string        // what is what stalled, such as "the response body".
	after time.Duration // after is how long nothing moved.
}

func (e *stallError) Error() string {
	return fmt.Sprintf("S3 stalled: no progress on %s for %v", e.what, e.after)
}

// Timeout reports true: the store did not answer in time.
func (e *stallError) Timeout() bool { return true }

// Temporary reports true: another attempt may succeed.
func (e *stallError) Temporary() bool { return true }

var _ net.Error = (*stallError)(nil)

// writeChunk bounds how much one deadline covers, so that a large write
// that progresses slowly is not taken for a stall.
const writeChunk = 64 << 10

// stallConn fails a write that the peer accepts no bytes of for timeout:
// an upload to a store that stopped reading. Reads are left alone; the
// response side is bounded by the header timeout and idleBody.
type stallConn struct {
	net.Conn
	timeout time.Duration
}

func (c *stallConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return n, err
		}
		k, err := c.Conn.Write(chunk)
		n += k
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = &stallError{what: "sending the request", after: c.timeout}
			}
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// stallDialer returns a DialContext whose connections fail writes that
// stall for idle (unless idle is 0).
func stallDialer(idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || idle <= 0 {
			return c, err
		}
		return &stallConn{Conn: c, timeout: idle}, nil
	}
}

// idleClient wraps every response body of an HTTP client in an idleBody.
type idleClient struct {
	client aws.HTTPClient
	idle   time.Duration
}

func (c idleClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.client.Do(req)
	if err == nil && resp.Body != nil && resp.Body != http.NoBody && req.Method != http.MethodHead {
		resp.Body = newIdleBody(resp.Body, c.idle)
	}
	return resp, err
}

// idleBody fails a Read that gets no bytes for timeout, closing the body
// under it, which aborts the connection. Only time spent in Read counts: a
// caller may take as long as it likes between reads.
type idleBody struct {
	body    io.ReadCloser
	timeout time.Duration
	timer   *time.Timer   // timer closes the body when it fires.
	fired   chan struct{} // fired is closed once timer has closed the body.
}

func newIdleBody(body io.ReadCloser, timeout time.Duration) *idleBody {
	b := &idleBody{body: body, timeout: timeout, fired: make(chan struct{})}
	b.timer = time.AfterFunc(time.Hour, func() {
		_ = b.body.Close()
		close(b.fired)
	})
	b.timer.Stop()
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	select {
	case <-b.fired:
		return 0, b.stalled()
	default:
	}
	b.timer.Reset(b.timeout)
	n, err := b.body.Read(p)
	if !b.timer.Stop() {
		// The timer fired during the read, which the closing ended.
		<-b.fired
		return n, b.stalled()
	}
	return n, err
}

func (b *idleBody) stalled() error {
	return &stallError{what: "the response body", after: b.timeout}
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.body.Close()
}

// fullBody fails a body that ends before the length its headers declared
// with io.ErrUnexpectedEOF, so that a cut response never reads as a whole
// one. Go's transport already does so for a Content-Length; this also
// covers a body whose end only the connection's closing marks.
type fullBody struct {
	io.ReadCloser
	left int64 // left is how many bytes are still due.
}

func (b *fullBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// expectedLength returns the length of a GET response body from its
// Content-Length or, failing that, its Content-Range, or -1 if neither
// tells it.
func expectedLength(contentLength *int64, contentRange *string) int64 {
	if contentLength != nil && *contentLength >= 0 {
		return *contentLength
	}
	if contentRange == nil {
		return -1
	}
	// bytes FIRST-LAST/SIZE
	spec, ok := strings.CutPrefix(*contentRange, "bytes ")
	if !ok {
		return -1
	}
	spec, _, _ = strings.Cut(spec, "/")
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return -1
	}
	f, err1 := strconv.ParseInt(first, 10, 64)
	l, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || l < f {
		return -1
	}
	return l - f + 1
}
