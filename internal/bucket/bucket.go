// Package bucket defines the small storage interface the filesystem is built
// on, and an in-memory implementation for tests.
//
// # Errors
//
// Implementations return errors that match, with errors.Is, one of ErrNotFound,
// ErrPermission, ErrStale or ErrCredentials when the cause is one of those,
// wrapped with the operation and the s3:// location. Anything else is a
// transient or unknown failure. The filesystem maps these to errno in one
// place.
//
// # Concurrency
//
// Implementations are safe for concurrent use. They do no caching: every call
// goes to the store.
package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPermission means the store denied the request.
	ErrPermission = errors.New("permission denied")
	// ErrStale means the object changed since its ETag was read.
	ErrStale = errors.New("object changed")
	// ErrCredentials means the request had no usable credentials: they could
	// not be renewed, or the store says they expired.
	ErrCredentials = errors.New("no valid credentials")
)

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
	// Mtime is the modification time a writer stored in the object's
	// metadata, or zero. Listings never carry it; Stat does.
	Mtime time.Time
}

// ModTime returns the time to show as the file's modification time.
func (o ObjectInfo) ModTime() time.Time {
	if !o.Mtime.IsZero() {
		return o.Mtime
	}
	return o.LastModified
}

// CompletedPart is one uploaded part of a multipart upload.
type CompletedPart struct {
	Number int32
	ETag   string
}

// MaxPartCopySize is the largest object a single CopyObject may copy; larger
// ones are copied in parts.
const MaxPartCopySize = 5 << 30

// ListRequest asks for one page of a listing.
type ListRequest struct {
	// Prefix limits the listing to keys that start with it.
	Prefix string
	// Delimiter, if set, rolls up keys that contain it after Prefix into
	// CommonPrefixes.
	Delimiter string
	// ContinuationToken continues a previous listing.
	ContinuationToken string
	// MaxKeys bounds the page; 0 means the store's default (1000 on S3).
	MaxKeys int
}

// ListPage is one page of a listing, in key order.
type ListPage struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	// NextContinuationToken is empty on the last page.
	NextContinuationToken string
}

// Bucket is one bucket of an object store.
type Bucket interface {
	// Name returns the bucket's name.
	Name() string
	// List returns one page of keys.
	List(ctx context.Context, req *ListRequest) (*ListPage, error)
	// Stat returns one object's metadata.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Read returns length bytes of an object from offset, or everything
	// from offset if length < 0. If etag is not empty and the object's ETag
	// differs, it fails with ErrStale. The caller closes the reader.
	Read(ctx context.Context, key string, offset, length int64, etag string) (io.ReadCloser, error)

	// Put stores size bytes from body as key, with mtime in its metadata
	// (unless zero). body is read from its start, and may be read again on
	// a retry.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, mtime time.Time) (ObjectInfo, error)
	// CreateMultipart starts a multipart upload of key and returns its ID.
	CreateMultipart(ctx context.Context, key string, mtime time.Time) (string, error)
	// UploadPart uploads one part, numbered from 1, and returns its ETag.
	UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (string, error)
	// CompleteMultipart assembles the parts, in order, into the object. The
	// result carries the new ETag; Size and Mtime may be left zero.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) (ObjectInfo, error)
	// AbortMultipart discards an upload and its parts.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// Delete removes key. Removing a key that does not exist succeeds.
	Delete(ctx context.Context, key string) error
	// Copy copies src to dst within the bucket, server-side, replacing the
	// metadata with mtime (or keeping src's if mtime is zero). size is src's
	// size; above MaxPartCopySize the copy is done in parts.
	Copy(ctx context.Context, src, dst string, size int64, mtime time.Time) (ObjectInfo, error)
}

// MtimeKey is the user metadata key that holds a file's modification time,
// as seconds since the epoch with a fraction, as rclone and s3fs write it.
const MtimeKey = "mtime"

// FormatMtime formats t for MtimeKey.
func FormatMtime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// ParseMtime parses a MtimeKey value, returning zero if it is not one.
func ParseMtime(s string) time.Time {
	sec, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}
		}
	}
	return time.Unix(n, ns).UTC()
}
