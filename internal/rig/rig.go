package rig

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SampleBinSize is the size of the seeded binary object
// maap-ops-workspace/jdoe/data/sample.bin.
const SampleBinSize = 5 << 20

// SMAPSample is the HDF5 file seeded as SMAP_L3_2024-01-01.h5 in a
// read-only smap path: a coarse, synthetic stand-in for a SMAP L3 daily soil
// moisture granule (group Soil_Moisture_Retrieval_Data_AM, datasets
// soil_moisture, latitude and longitude, 72×144, chunked and compressed),
// written by sample/make_smap.py, so that h5py and xarray can open it in
// the demo.
//
//go:embed sample/SMAP_L3_2024-01-01.h5
var SMAPSample []byte

// SMAPSampleName is the name SMAPSample is seeded under.
const SMAPSampleName = "SMAP_L3_2024-01-01.h5"

// Options configures Start.
type Options struct {
	Paths    []AuthorizedPath // Paths are the authorized paths; default DefaultPaths().
	Lifetime time.Duration    // Lifetime is the declared credential lifetime; default 1h.
	Flat     bool             // Flat makes MAAP answer in the older flat shape.
	Seed     bool             // Seed uploads sample data (see SeedObjects).
}

// Rig is a running MinIO, expiry-enforcing proxy and MAAP emulator.
type Rig struct {
	MinIO  *MinIO
	Proxy  *Proxy
	MAAP   *MAAP
	Ticket string           // Ticket is the accepted MAAP_PGT value.
	Paths  []AuthorizedPath // Paths are the authorized paths MAAP hands out.
}

// DefaultPaths returns MAAP's example paths: the read-write workspace
// maap-ops-workspace/jdoe, the read-write org path
// shared-project-bucket/team-data and the read-only org path
// public-reference-data/smap/v9.
func DefaultPaths() []AuthorizedPath {
	return []AuthorizedPath{
		{Bucket: "maap-ops-workspace", Prefix: "jdoe", Type: TypeWorkspace, Access: AccessReadWrite},
		{Bucket: "shared-project-bucket", Prefix: "team-data", Type: TypeOrg, Access: AccessReadWrite},
		{Bucket: "public-reference-data", Prefix: "smap/v9", Type: TypeOrg, Access: AccessReadOnly},
	}
}

// Start starts MinIO, the proxy and the MAAP emulator, creates every bucket
// in Paths and seeds sample data if asked. On error it stops whatever it
// started.
func Start(ctx context.Context, opts Options) (_ *Rig, err error) {
	began := time.Now()
	if len(opts.Paths) == 0 {
		opts.Paths = DefaultPaths()
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	r := &Rig{Ticket: "PGT-rig-" + randomHex(16), Paths: append([]AuthorizedPath(nil), opts.Paths...)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()

	if r.MinIO, err = StartMinIO(ctx); err != nil {
		return nil, err
	}
	if r.Proxy, err = StartProxy(r.MinIO.Endpoint); err != nil {
		return nil, err
	}
	if r.MAAP, err = StartMAAP(MAAPOptions{
		MinIO:    r.MinIO,
		Proxy:    r.Proxy,
		Tickets:  []string{r.Ticket},
		Paths:    r.Paths,
		Lifetime: opts.Lifetime,
		Flat:     opts.Flat,
	}); err != nil {
		return nil, err
	}

	client := r.MinIO.Client()
	created := map[string]bool{}
	for _, p := range r.Paths {
		if created[p.Bucket] {
			continue
		}
		created[p.Bucket] = true
		if _, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(p.Bucket)}); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", p.Bucket, err)
		}
	}
	if opts.Seed {
		for _, o := range SeedObjects(r.Paths) {
			if _, err = client.PutObject(ctx, &s3.PutObjectInput{
				Bucket:        aws.String(o.Bucket),
				Key:           aws.String(o.Key),
				Body:          bytes.NewReader(o.Body),
				ContentLength: aws.Int64(int64(len(o.Body))),
			}); err != nil {
				return nil, fmt.Errorf("seed s3://%s/%s: %w", o.Bucket, o.Key, err)
			}
		}
	}
	slog.Info("rig: started", "took", time.Since(began).Round(time.Millisecond), "seeded", opts.Seed)
	return r, nil
}

// Env returns the environment variables that point s3mount at the rig:
// MAAP_API_HOST, MAAP_API_HOST_SCHEME, MAAP_PGT, AWS_ENDPOINT_URL_S3 (the
// proxy) and AWS_REGION.
func (r *Rig) Env() []string {
	return []string{
		"MAAP_API_HOST=" + r.MAAP.Host,
		"MAAP_API_HOST_SCHEME=http",
		"MAAP_PGT=" + r.Ticket,
		"AWS_ENDPOINT_URL_S3=" + r.Proxy.URL,
		"AWS_REGION=" + Region,
	}
}

// Close stops the MAAP emulator, the proxy and MinIO, in that order. It is
// safe to call more than once.
func (r *Rig) Close() error {
	var errs []error
	if r.MAAP != nil {
		errs = append(errs, r.MAAP.Close())
	}
	if r.Proxy != nil {
		errs = append(errs, r.Proxy.Close())
	}
	if r.MinIO != nil {
		errs = append(errs, r.MinIO.Stop())
	}
	return errors.Join(errs...)
}

// Object is one object of sample data.
type Object struct {
	Bucket string
	Key    string
	Body   []byte
}

// SeedObjects returns the sample data Start uploads when Options.Seed is
// set. Every path gets a few files; the first workspace path also gets
// results/run1.csv, results/run2.csv, an empty-dir/ marker and a 5 MiB
// deterministic binary data/sample.bin; a read-only path whose prefix
// starts with smap gets the HDF5 file SMAPSample. Paths named like
// DefaultPaths get the files the demo mentions. Every bucket also gets
// other-user/secret.txt, outside every authorized prefix, which no
// credentials minted by MAAP may ever reveal (unless a path covers the whole
// bucket).
func SeedObjects(paths []AuthorizedPath) []Object {
	var objs []Object
	add := func(bucket, key, body string) {
		objs = append(objs, Object{Bucket: bucket, Key: key, Body: []byte(body)})
	}
	under := func(p AuthorizedPath, rel string) string {
		if pre := p.prefix(); pre != "" {
			return pre + "/" + rel
		}
		return rel
	}
	// A bucket with a whole-bucket path has no outside to put a secret in.
	seenBucket := map[string]bool{}
	for _, p := range paths {
		if p.prefix() == "" {
			seenBucket[p.Bucket] = true
		}
	}
	workspaceDone := false
	for _, p := range paths {
		switch {
		case p.Type == TypeWorkspace && !workspaceDone:
			workspaceDone = true
			add(p.Bucket, under(p, "README.txt"), "Welcome to your MAAP workspace ("+p.URI()+").\nThis file was seeded by the s3mount test rig.\n")
			add(p.Bucket, under(p, "results/run1.csv"), "run,step,value\n1,1,0.125\n1,2,0.250\n1,3,0.375\n")
			add(p.Bucket, under(p, "results/run2.csv"), "run,step,value\n2,1,0.500\n2,2,0.625\n2,3,0.750\n2,4,0.875\n")
			add(p.Bucket, under(p, "empty-dir/"), "")
			objs = append(objs, Object{Bucket: p.Bucket, Key: under(p, "data/sample.bin"), Body: SampleBin()})
		case p.ReadWrite():
			add(p.Bucket, under(p, "notes.md"), "# Team notes\n\nShared, read-write area of "+p.URI()+".\n")
			add(p.Bucket, under(p, "shared/params.json"), `{"threshold": 0.5, "iterations": 10}`+"\n")
		default:
			if strings.HasPrefix(p.prefix(), "smap") {
				objs = append(objs, Object{Bucket: p.Bucket, Key: under(p, SMAPSampleName), Body: SMAPSample})
			} else {
				add(p.Bucket, under(p, "README.txt"), "read-only reference data in "+p.URI()+"\n")
			}
			add(p.Bucket, under(p, "granules/g001.txt"), "granule 001\n")
			add(p.Bucket, under(p, "granules/g002.txt"), "granule 002\n")
		}
		if !seenBucket[p.Bucket] {
			seenBucket[p.Bucket] = true
			add(p.Bucket, "other-user/secret.txt", "not yours: outside every authorized prefix\n")
		}
	}
	return objs
}

// SampleBin returns the content of the seeded data/sample.bin: SampleBinSize
// pseudo-random bytes, the same on every call.
func SampleBin() []byte {
	b := make([]byte, SampleBinSize)
	rng := rand.New(rand.NewPCG(0x5333_6d6f_756e_74, 1))
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
