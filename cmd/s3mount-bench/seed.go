package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// tmpfsMagic is the f_type statfs reports for tmpfs.
const tmpfsMagic = 0x01021994

// seed uploads what the wanted workloads read, straight to MinIO with its
// root credentials (this is not measured), and prepares the data that
// writes write.
func (b *bench) seed(ctx context.Context) error {
	began := time.Now()
	c := b.cfg
	wantsAny := func(ids ...string) bool {
		for _, id := range ids {
			if c.wants(id) {
				return true
			}
		}
		return false
	}
	if wantsAny("write", "create-small") {
		b.data = make([]byte, c.objectSize)
		const chunk = 8 << 20
		_ = parallel(ctx, int((c.objectSize+chunk-1)/chunk), 4, func(ctx context.Context, i int) error {
			off := int64(i) * chunk
			fillRandom("write", off, b.data[off:min(off+chunk, c.objectSize)])
			return nil
		})
	}
	if wantsAny("seq1", "seq4") {
		err := multipartUpload(ctx, b.admin, bucket, prefix+warmKey, 64<<20, c.partSize, 8, func(off int64, buf []byte) {
			fillRandom(warmKey, off, buf)
		})
		if err != nil {
			return err
		}
	}
	if wantsAny("seq1", "seq4", "rand4k", "rand64k", "ttfb") {
		logf("seeding 4 objects of %s", fmtBytes(c.objectSize))
		for i := range 4 {
			name := seqKey(i)
			err := multipartUpload(ctx, b.admin, bucket, prefix+name, c.objectSize, c.partSize, 8, func(off int64, buf []byte) {
				fillRandom(name, off, buf)
			})
			if err != nil {
				return err
			}
		}
	}
	if wantsAny("h5-subset", "h5-whole") {
		if err := b.seedH5(ctx); err != nil {
			return err
		}
	}
	if wantsAny("ls") {
		logf("seeding %d objects to list", c.lsCount)
		err := parallel(ctx, c.lsCount, 32, func(ctx context.Context, i int) error {
			return putObject(ctx, b.admin, bucket, prefix+lsKey(i), []byte("x\n"))
		})
		if err != nil {
			return err
		}
	}
	if wantsAny("read-small") {
		logf("seeding %d small objects", c.smallCount)
		err := parallel(ctx, c.smallCount, 32, func(ctx context.Context, i int) error {
			body := make([]byte, c.smallSize)
			fillRandom(smallKey(i), 0, body)
			return putObject(ctx, b.admin, bucket, prefix+smallKey(i), body)
		})
		if err != nil {
			return err
		}
	}
	// The directories writes go to exist as prefixes, as they would in a
	// bucket someone else filled.
	for _, d := range []string{writeDir, createDir} {
		if err := putObject(ctx, b.admin, bucket, prefix+d+"/README.txt", []byte("s3mount-bench writes here\n")); err != nil {
			return err
		}
	}
	logf("seeded in %s", time.Since(began).Round(100*time.Millisecond))
	return nil
}

// seedH5 writes the HDF5 file to local disk with h5py and uploads it.
func (b *bench) seedH5(ctx context.Context) error {
	c := b.cfg
	script := filepath.Join(b.workdir, "h5bench.py")
	if err := os.WriteFile(script, h5Script, 0o644); err != nil {
		return err
	}
	b.h5Local = filepath.Join(b.workdir, "data.h5")
	logf("writing a %d×%d HDF5 dataset with h5py", c.h5Side, c.h5Side)
	if _, err := b.runH5(ctx, "create", b.h5Local, fmt.Sprint(c.h5Side), fmt.Sprint(c.h5Chunk)); err != nil {
		return fmt.Errorf("%w (is python3-h5py installed? run scripts/ensure-bench-tools.sh)", err)
	}
	f, err := os.Open(b.h5Local)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.h5Local, &st); err == nil && st.Type == tmpfsMagic {
		b.notes = append(b.notes, fmt.Sprintf("The local copy of the HDF5 file is on tmpfs (%s), not on disk: set BENCH_WORKDIR to a directory on disk.", b.workdir))
	}
	return multipartUpload(ctx, b.admin, bucket, prefix+h5Key, fi.Size(), c.partSize, 4, func(off int64, buf []byte) {
		_, _ = f.ReadAt(buf, off)
	})
}
