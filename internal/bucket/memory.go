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

	mu      sync.Mutex // guards objects, uploads and nextID
	objects map[string]memObject
	// uploads holds the parts of each multipart upload in progress.
	uploads map[string]*memUpload
	nextID  int
}

type memObject struct {
	data    []byte
	etag    string
	modTime time.Time
	mtime   time.Time
}

type memUpload struct {
	key   string
	mtime time.Time
	parts map[int32][]byte
}

var _ Bucket = (*Memory)(nil)

// NewMemory returns an empty in-memory bucket.
func NewMemory(name string) *Memory {
	return &Memory{name: name, objects: map[string]memObject{}, uploads: map[string]*memUpload{}}
}

// PutBytes stores an object, replacing any object with the same key.
func (m *Memory) PutBytes(key string, data []byte) {
	m.mu.Lock()
	m.store(key, bytes.Clone(data), time.Time{})
	m.mu.Unlock()
}

// Uploads returns the number of multipart uploads in progress.
func (m *Memory) Uploads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.uploads)
}

// store saves data as key. m.mu must be held.
func (m *Memory) store(key string, data []byte, mtime time.Time) ObjectInfo {
	if !mtime.IsZero() {
		mtime = ParseMtime(FormatMtime(mtime)) // as it would come back from S3
	}
	sum := md5.Sum(data)
	o := memObject{data: data, etag: `"` + hex.EncodeToString(sum[:]) + `"`, modTime: time.Now().UTC().Truncate(time.Second), mtime: mtime}
	m.objects[key] = o
	return o.info(key)
}

func (o memObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.modTime, Mtime: o.mtime}
}

// Put implements Bucket.
func (m *Memory) Put(_ context.Context, key string, body io.ReadSeeker, size int64, mtime time.Time) (ObjectInfo, error) {
	data, err := readBody(body, size)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put s3://%s/%s: %w", m.name, key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store(key, data, mtime), nil
}

func readBody(body io.ReadSeeker, size int64) ([]byte, error) {
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, err
	}
	return data, nil
}

// CreateMultipart implements Bucket.
func (m *Memory) CreateMultipart(_ context.Context, key string, mtime time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	id := "upload-" + strconv.Itoa(m.nextID)
	m.uploads[id] = &memUpload{key: key, mtime: mtime, parts: map[int32][]byte{}}
	return id, nil
}

// UploadPart implements Bucket.
func (m *Memory) UploadPart(_ context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (string, error) {
	data, err := readBody(body, size)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[uploadID]
	if !ok || u.key != key {
		return "", fmt.Errorf("upload part of s3://%s/%s: no such upload: %w", m.name, key, ErrNotFound)
	}
	u.parts[number] = data
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`, nil
}

// CompleteMultipart implements Bucket.
func (m *Memory) CompleteMultipart(_ context.Context, key, uploadID string, parts []CompletedPart) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[uploadID]
	if !ok || u.key != key {
		return ObjectInfo{}, fmt.Errorf("complete s3://%s/%s: no such upload: %w", m.name, key, ErrNotFound)
	}
	var data []byte
	for i, p := range parts {
		part, ok := u.parts[p.Number]
		if !ok || p.Number != int32(i+1) {
			return ObjectInfo{}, fmt.Errorf("complete s3://%s/%s: part %d missing or out of order", m.name, key, p.Number)
		}
		data = append(data, part...)
	}
	delete(m.uploads, uploadID)
	return m.store(key, data, u.mtime), nil
}

// AbortMultipart implements Bucket.
func (m *Memory) AbortMultipart(_ context.Context, key, uploadID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, uploadID)
	return nil
}

// Delete implements Bucket.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

// Copy implements Bucket.
func (m *Memory) Copy(_ context.Context, src, dst string, _ int64, mtime time.Time) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[src]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("copy s3://%s/%s: %w", m.name, src, ErrNotFound)
	}
	if mtime.IsZero() {
		mtime = o.mtime
	}
	return m.store(dst, bytes.Clone(o.data), mtime), nil
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
		info := o.info(k)
		info.Mtime = time.Time{} // listings carry no metadata, as on S3
		page.Objects = append(page.Objects, info)
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
	return o.info(key), nil
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
