package bucket_test

import (
	"testing"

	"github.com/s3mount/s3mount/internal/bucket"
	"github.com/s3mount/s3mount/internal/bucket/buckettest"
)

func TestMemory(t *testing.T) {
	m := bucket.NewMemory("test")
	buckettest.Run(t, m, "pre/", func(t *testing.T, key string, data []byte) { m.Put(key, data) })
}
