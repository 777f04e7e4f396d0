// Package buckettest is a test suite that any bucket.Bucket must pass. It runs
// against the in-memory bucket and against a real S3 server.
package buckettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Put stores an object in the bucket under test, bypassing the interface.
type Put func(t *testing.T, key string, data []byte)

// Run runs the suite. The bucket must be empty under prefix, which must be
// empty or end in "/".
func Run(t *testing.T, b bucket.Bucket, prefix string, put Put) {
	ctx := context.Background()
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	keys := []string{"a", "b/1", "b/2", "b/c/3", "d/", "e.txt", "e/f"}
	for _, k := range keys {
		put(t, prefix+k, data)
	}
	// More than one page of objects in one directory.
	for i := range 5 {
		put(t, fmt.Sprintf("%spage/%02d", prefix, i), []byte{byte(i)})
	}

	t.Run("ListDelimiter", func(t *testing.T) {
		objs, prefixes := listAll(t, b, prefix, "/", 0)
		wantObjs := []string{prefix + "a", prefix + "e.txt"}
		wantPrefixes := []string{prefix + "b/", prefix + "d/", prefix + "e/", prefix + "page/"}
		if !slices.Equal(objs, wantObjs) || !slices.Equal(prefixes, wantPrefixes) {
			t.Errorf("List(%q, /) = %q, %q; want %q, %q", prefix, objs, prefixes, wantObjs, wantPrefixes)
		}
	})
	t.Run("ListPages", func(t *testing.T) {
		objs, _ := listAll(t, b, prefix+"page/", "/", 2)
		if len(objs) != 5 {
			t.Errorf("paged List = %q, want 5 keys", objs)
		}
		mixed, prefixes := listAll(t, b, prefix, "/", 1)
		if len(mixed) != 2 || len(prefixes) != 4 {
			t.Errorf("List with MaxKeys 1 = %q, %q", mixed, prefixes)
		}
	})
	t.Run("ListMarker", func(t *testing.T) {
		objs, _ := listAll(t, b, prefix+"d/", "/", 0)
		if !slices.Equal(objs, []string{prefix + "d/"}) {
			t.Errorf("List(d/) = %q, want the marker itself", objs)
		}
	})
	t.Run("ListSizes", func(t *testing.T) {
		page, err := b.List(ctx, &bucket.ListRequest{Prefix: prefix + "a", Delimiter: "/"})
		if err != nil || len(page.Objects) != 1 {
			t.Fatalf("List(a) = %+v, %v", page, err)
		}
		o := page.Objects[0]
		if o.Size != int64(len(data)) || o.ETag == "" || o.LastModified.IsZero() {
			t.Errorf("List(a) object = %+v", o)
		}
	})
	t.Run("Stat", func(t *testing.T) {
		info, err := b.Stat(ctx, prefix+"a")
		if err != nil || info.Size != int64(len(data)) || info.ETag == "" {
			t.Errorf("Stat(a) = %+v, %v", info, err)
		}
		if _, err := b.Stat(ctx, prefix+"missing"); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Stat(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := b.Stat(ctx, prefix+"b"); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Stat(b), a prefix only, error = %v, want ErrNotFound", err)
		}
	})
	t.Run("Read", func(t *testing.T) {
		info, err := b.Stat(ctx, prefix+"a")
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			off, n int64
			etag   string
			want   []byte
		}{
			{0, -1, "", data},
			{10, 20, "", data[10:30]},
			{99_990, 100, "", data[99_990:]},
			{5, -1, info.ETag, data[5:]},
			{100_000, 10, "", nil},
		}
		for _, tt := range tests {
			r, err := b.Read(ctx, prefix+"a", tt.off, tt.n, tt.etag)
			if err != nil {
				t.Errorf("Read(a, %d, %d): %v", tt.off, tt.n, err)
				continue
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("Read(a, %d, %d) = %d bytes, %v; want %d bytes", tt.off, tt.n, len(got), err, len(tt.want))
			}
		}
		if _, err := b.Read(ctx, prefix+"a", 0, 10, `"0123456789abcdef0123456789abcdef"`); !errors.Is(err, bucket.ErrStale) {
			t.Errorf("Read with another ETag error = %v, want ErrStale", err)
		}
		if _, err := b.Read(ctx, prefix+"missing", 0, 10, ""); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Read(missing) error = %v, want ErrNotFound", err)
		}
	})
}

// RunWrites runs the write half of the suite under prefix.
func RunWrites(t *testing.T, b bucket.Bucket, prefix string) {
	ctx := context.Background()
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	t.Run("PutStat", func(t *testing.T) {
		data := []byte("hello, world")
		info, err := b.Put(ctx, prefix+"put.txt", bytes.NewReader(data), int64(len(data)), mtime)
		if err != nil || info.ETag == "" {
			t.Fatalf("Put = %+v, %v", info, err)
		}
		got, err := b.Stat(ctx, prefix+"put.txt")
		if err != nil || got.Size != int64(len(data)) || got.ETag != info.ETag || !got.Mtime.Equal(mtime) {
			t.Errorf("Stat after Put = %+v, %v; want size %d, ETag %s, mtime %v", got, err, len(data), info.ETag, mtime)
		}
		if got.ModTime() != mtime {
			t.Errorf("ModTime = %v, want %v", got.ModTime(), mtime)
		}
		if _, err := b.Put(ctx, prefix+"empty", bytes.NewReader(nil), 0, time.Time{}); err != nil {
			t.Errorf("Put of an empty object: %v", err)
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		const part = 5 << 20 // S3's smallest part but the last
		data := make([]byte, 2*part+1234)
		for i := range data {
			data[i] = byte(i / 1000)
		}
		id, err := b.CreateMultipart(ctx, prefix+"multi.bin", mtime)
		if err != nil {
			t.Fatal(err)
		}
		var parts []bucket.CompletedPart
		for n, off := int32(1), 0; off < len(data); n, off = n+1, off+part {
			end := min(off+part, len(data))
			etag, err := b.UploadPart(ctx, prefix+"multi.bin", id, n, bytes.NewReader(data[off:end]), int64(end-off))
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, bucket.CompletedPart{Number: n, ETag: etag})
		}
		info, err := b.CompleteMultipart(ctx, prefix+"multi.bin", id, parts)
		if err != nil || info.ETag == "" {
			t.Fatalf("CompleteMultipart = %+v, %v", info, err)
		}
		if got := readAll(t, b, prefix+"multi.bin"); !bytes.Equal(got, data) {
			t.Errorf("multipart object has %d bytes, want the %d uploaded", len(got), len(data))
		}
		if st, err := b.Stat(ctx, prefix+"multi.bin"); err != nil || !st.Mtime.Equal(mtime) {
			t.Errorf("Stat(multi.bin) = %+v, %v; want mtime %v", st, err, mtime)
		}
	})
	t.Run("Abort", func(t *testing.T) {
		id, err := b.CreateMultipart(ctx, prefix+"aborted", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.UploadPart(ctx, prefix+"aborted", id, 1, bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
		if err := b.AbortMultipart(ctx, prefix+"aborted", id); err != nil {
			t.Errorf("AbortMultipart: %v", err)
		}
		if _, err := b.Stat(ctx, prefix+"aborted"); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Stat after abort: %v, want ErrNotFound", err)
		}
	})
	t.Run("CopyDelete", func(t *testing.T) {
		src, dst := prefix+"odd name+%.txt", prefix+"copy/dst ü.txt"
		data := []byte("copy me")
		if _, err := b.Put(ctx, src, bytes.NewReader(data), int64(len(data)), mtime); err != nil {
			t.Fatal(err)
		}
		info, err := b.Copy(ctx, src, dst, int64(len(data)), time.Time{})
		if err != nil || info.Size != int64(len(data)) || !info.Mtime.Equal(mtime) {
			t.Errorf("Copy keeping metadata = %+v, %v; want mtime %v", info, err, mtime)
		}
		newer := mtime.Add(time.Hour)
		if info, err := b.Copy(ctx, dst, dst, int64(len(data)), newer); err != nil || !info.Mtime.Equal(newer) {
			t.Errorf("Copy onto itself with a new mtime = %+v, %v; want %v", info, err, newer)
		}
		if got := readAll(t, b, dst); !bytes.Equal(got, data) {
			t.Errorf("copied object = %q, want %q", got, data)
		}
		for _, k := range []string{src, dst, prefix + "never-existed"} {
			if err := b.Delete(ctx, k); err != nil {
				t.Errorf("Delete(%q): %v", k, err)
			}
		}
		if _, err := b.Stat(ctx, src); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
		}
	})
}

func readAll(t *testing.T, b bucket.Bucket, key string) []byte {
	t.Helper()
	r, err := b.Read(context.Background(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("Read(%q): %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func listAll(t *testing.T, b bucket.Bucket, prefix, delim string, maxKeys int) (objs, prefixes []string) {
	t.Helper()
	req := &bucket.ListRequest{Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys}
	for range 1000 {
		page, err := b.List(context.Background(), req)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		for _, o := range page.Objects {
			objs = append(objs, o.Key)
		}
		prefixes = append(prefixes, page.CommonPrefixes...)
		if page.NextContinuationToken == "" {
			return objs, prefixes
		}
		req.ContinuationToken = page.NextContinuationToken
	}
	t.Fatalf("List(%q) did not end", prefix)
	return nil, nil
}
