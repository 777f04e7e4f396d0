package bucket

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Bucket for tests. It lists, pages and rolls up
// common prefixes the way S3 does.
type Memory struct {
	name string

	mu      sync.Mutex // guards objects
	objects map[string]memObject
}

type memObject struct {
	data    []byte
	etag    string
	modTime time.Time
}

var _ Bucket = (*Memory)(nil)

// NewMemory returns an empty in-memory bucket.
func NewMemory(name string) *Memory {
	return &Memory{name: name, objects: map[string]memObject{}}
}

// Put stores an object, replacing any object with the same key.
func (m *Memory) Put(key string, data []byte) {
	sum := md5.Sum(data)
	m.mu.Lock()
	m.objects[key] = memObject{data: bytes.Clone(data), etag: `"` + hex.EncodeToString(sum[:]) + `"`, modTime: time.Now().UTC().Truncate(time.Second)}
	m.mu.Unlock()
}

// Name implements Bucket.
func (m *Memory) Name() string { return m.name }

// List implements Bucket.
func (m *Memory) List(_ context.Context, req *ListRequest) (*ListPage, error) {
	maxKeys := req.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 1000
	}
	m.mu.Lock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		if strings.HasPrefix(k, req.Prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	page := &ListPage{}
	after := req.ContinuationToken
	n := 0
	for _, k := range keys {
		if after != "" && k <= after {
			continue
		}
		if n == maxKeys {
			page.NextContinuationToken = after
			break
		}
		if req.Delimiter != "" {
			if i := strings.Index(k[len(req.Prefix):], req.Delimiter); i >= 0 {
				cp := k[:len(req.Prefix)+i+len(req.Delimiter)]
				page.CommonPrefixes = append(page.CommonPrefixes, cp)
				// Skip every key under this common prefix.
				after = cp + "\U0010FFFF"
				n++
				continue
			}
		}
		o := m.objects[k]
		page.Objects = append(page.Objects, ObjectInfo{Key: k, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.modTime})
		after = k
		n++
	}
	m.mu.Unlock()
	return page, nil
}

// Stat implements Bucket.
func (m *Memory) Stat(_ context.Context, key string) (ObjectInfo, error) {
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return ObjectInfo{}, fmt.Errorf("stat s3://%s/%s: %w", m.name, key, ErrNotFound)
	}
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.modTime}, nil
}

// Read implements Bucket.
func (m *Memory) Read(_ context.Context, key string, offset, length int64, etag string) (io.ReadCloser, error) {
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	where := "read s3://" + m.name + "/" + key + " at " + strconv.FormatInt(offset, 10)
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: %w", where, ErrNotFound)
	case etag != "" && etag != o.etag:
		return nil, fmt.Errorf("%s: %w", where, ErrStale)
	case offset < 0 || offset > int64(len(o.data)):
		return nil, fmt.Errorf("%s: offset past the end of a %d-byte object", where, len(o.data))
	}
	end := int64(len(o.data))
	if length >= 0 && offset+length < end {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), nil
}
