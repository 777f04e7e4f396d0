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
	"io"
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
}

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
}
