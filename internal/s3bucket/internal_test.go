package s3bucket

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/s3mount/s3mount/internal/bucket"
)

// s3Encode encodes a key as S3 and MinIO do for EncodingType=url: bytes
// other than letters, digits, "-_.~/*" as %XX, but a space as '+' (MinIO
// also escapes '~', which decoding does not mind).
func s3Encode(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_./*", c) >= 0:
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestDecodeKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		// What MinIO returns for these keys, as seen on the wire.
		{"dir/a%01b", "dir/a\x01b", true},
		{"dir/a+b", "dir/a b", true},
		{"dir/a%2Bb", "dir/a+b", true},
		{"dir/tab%09nl%0A", "dir/tab\tnl\n", true},
		{"dir/%C3%A9%25%7E*%27%28%29", "dir/é%~*'()", true},
		{"dir/sub%01/", "dir/sub\x01/", true},
		{"plain/key.txt", "plain/key.txt", true},
		{"", "", true},
		{"dir/%", "", false},
		{"dir/%zz", "", false},
		{"dir/%4", "", false},
		{"dir/%FF", "", false}, // not UTF-8
		{"dir/%C3", "", false}, // a cut UTF-8 sequence
	} {
		got, err := decodeKey(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("decodeKey(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzDecodeKey checks that decodeKey never panics, returns only UTF-8,
// and inverts the store's encoding of any key.
func FuzzDecodeKey(f *testing.F) {
	for _, s := range []string{"dir/a%01b", "a+b", "a%2Bb", "%", "%zz", "%FF", "é", "dir/sub%01/", "~*'()", "a b+c%20d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeKey(s)
		if err == nil {
			if !utf8.ValidString(k) {
				t.Fatalf("decodeKey(%q) = %q, which is not UTF-8", s, k)
			}
			if again, err := decodeKey(s3Encode(k)); err != nil || again != k {
				t.Fatalf("decodeKey(s3Encode(%q)) = %q, %v", k, again, err)
			}
		}
		// Taken as a key, s must survive both encodings.
		if utf8.ValidString(s) {
			for _, enc := range []string{s3Encode(s), url.QueryEscape(s)} {
				if got, err := decodeKey(enc); err != nil || got != s {
					t.Fatalf("decodeKey(%q) = %q, %v; want %q", enc, got, err, s)
				}
			}
		}
	})
}

func TestExpectedLength(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		cl   *int64
		cr   *string
		want int64
	}{
		{i64(10), nil, 10},
		{i64(0), str("bytes 0-9/100"), 0},
		{nil, str("bytes 0-9/100"), 10},
		{i64(-1), str("bytes 5-5/*"), 1},
		{nil, str("bytes */100"), -1},
		{nil, str("bytes 9-0/100"), -1},
		{nil, str("items 0-9/100"), -1},
		{nil, nil, -1},
	} {
		if got := expectedLength(tc.cl, tc.cr); got != tc.want {
			t.Errorf("expectedLength(%v, %v) = %d, want %d", tc.cl, tc.cr, got, tc.want)
		}
	}
}

// TestFullBody checks that a body that ends early fails, and one that ends
// on time does not.
func TestFullBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int64
		err  error
	}{
		{"0123456789", 10, nil},
		{"01234", 10, io.ErrUnexpectedEOF},
		{"", 1, io.ErrUnexpectedEOF},
		{"", 0, nil},
	} {
		b := &fullBody{ReadCloser: io.NopCloser(strings.NewReader(tc.body)), left: tc.want}
		got, err := io.ReadAll(b)
		if string(got) != tc.body || !errors.Is(err, tc.err) {
			t.Errorf("body %q declared %d: read %q, %v; want the body and %v", tc.body, tc.want, got, err, tc.err)
		}
	}
}

// TestIdleBody checks that a read that gets nothing for the timeout fails
// with a timeout, and that time between reads does not count.
func TestIdleBody(t *testing.T) {
	const idle = 200 * time.Millisecond
	pr, pw := io.Pipe()
	b := newIdleBody(pr, idle)
	defer b.Close()
	go func() {
		_, _ = pw.Write([]byte("abc"))
		_, _ = pw.Write([]byte("def"))
		// Then nothing, and the pipe stays open.
	}()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("first read: %q, %v", buf, err)
	}
	// A caller that dawdles between reads is not a stalled store: the next
	// bytes were ready all along.
	time.Sleep(2 * idle)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "def" {
		t.Fatalf("read after a pause: %q, %v", buf, err)
	}
	began := time.Now()
	n, err := b.Read(buf)
	took := time.Since(began)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read from a stalled body: %d, %v; want a timeout", n, err)
	}
	if took < idle || took > 10*idle {
		t.Errorf("stalled read failed after %v, want about %v", took, idle)
	}
	// The body is closed under the reader: the writer sees it.
	if _, err := pw.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write to the stalled body's source: %v, want it closed", err)
	}
	if _, err := b.Read(buf); !errors.As(err, &ne) {
		t.Errorf("read after the stall: %v, want the timeout again", err)
	}
}

// TestStallConn checks that a write the peer accepts nothing of fails with
// a timeout, and that a slow but steady peer does not.
func TestStallConn(t *testing.T) {
	const idle = 200 * time.Millisecond
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	c := &stallConn{Conn: a, timeout: idle}
	// net.Pipe has no buffer: each write waits for a read. Read a chunk at
	// a time, each well within the timeout, for longer than the timeout.
	data := bytes.Repeat([]byte("x"), 8*writeChunk)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		done <- err
	}()
	buf := make([]byte, writeChunk)
	for got := 0; got < len(data); {
		time.Sleep(idle / 4)
		n, err := z.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if err := <-done; err != nil {
		t.Fatalf("write to a slow reader: %v", err)
	}
	// Now nobody reads.
	_, err := c.Write([]byte("stuck"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "sending the request") {
		t.Errorf("write nobody reads: %v, want a stall timeout", err)
	}
}

func TestMultipartETag(t *testing.T) {
	// The ETag S3 gives an object of one part "a" and one part "b".
	parts := []bucket.CompletedPart{
		{Number: 1, ETag: `"0cc175b9c0f1b6a831c399e269772661"`},
		{Number: 2, ETag: "92eb5ffee6ae2fec3ad71c777531578f"},
	}
	sum := md5.Sum(append(mustHex("0cc175b9c0f1b6a831c399e269772661"), mustHex("92eb5ffee6ae2fec3ad71c777531578f")...))
	if got, ok := multipartETag(parts); !ok || got != hex.EncodeToString(sum[:])+"-2" {
		t.Errorf("multipartETag = %q, %v", got, ok)
	}
	// Not an MD5, as under SSE-KMS: no claim.
	if got, ok := multipartETag([]bucket.CompletedPart{{Number: 1, ETag: `"kms-etag"`}}); ok {
		t.Errorf("multipartETag of a non-MD5 ETag = %q, true", got)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
