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
