// Package s3bucket implements bucket.Bucket on Amazon S3 and S3-compatible
// stores with aws-sdk-go-v2. It is the only package that imports the SDK's
// S3 service.
//
// # Errors
//
// SDK errors become bucket errors here and nowhere else: NoSuchKey and 404
// match bucket.ErrNotFound, AccessDenied and 403 bucket.ErrPermission, 412
// bucket.ErrStale, and ExpiredToken, InvalidAccessKeyId, InvalidToken, a 400
// on HEAD (which has no body to say more) or a failure to get credentials
// bucket.ErrCredentials. The SDK's retryer retries throttling, 5xx, dropped
// connections, responses cut short and the timeouts below, up to five
// attempts in all, before an error comes back. A retried
// CompleteMultipart that finds its upload gone, because the answer to an
// attempt that completed it was lost, succeeds if the object has the ETag
// its parts make.
//
// # Timeouts
//
// Nothing waits forever on a store that stopped answering. In each attempt,
// connecting may take 10 s and the TLS handshake TLSHandshakeTimeout; a
// request body the store accepts no bytes of for IdleTimeout fails, and so
// do response headers that do not come within HeaderTimeout of the request
// being sent, and a response body that yields no bytes for IdleTimeout.
// CopyObject, UploadPartCopy and CompleteMultipartUpload, which do their
// work before they answer, wait 20 times HeaderTimeout for headers. A
// transfer that keeps moving, however slowly, is never cut off.
//
// A request that makes no progress therefore fails after at most
// attempts x (timeout + backoff): five attempts, the timeout that applies,
// and a backoff before each retry of at most 0.05 x 2^i s after a timeout
// (0.75 s in all) or 1 x 2^i s after throttling (15 s in all). With the
// defaults, a Stat on a store that answers nothing fails within
// 5 x 30 s + 0.75 s. The error is an ordinary one, not a cancellation, and
// matches none of the bucket errors: the filesystem reports EIO.
//
// Read returns the response body as it comes: a body that stalls fails the
// caller's Read after IdleTimeout with an error whose Timeout method reports
// true, and a body cut short fails with io.ErrUnexpectedEOF (or the
// connection's error), never with a clean io.EOF. Resuming is the caller's
// business.
//
// # Listing
//
// List asks the store to URL-encode the keys it returns (EncodingType=url),
// so that keys with characters XML cannot carry, such as U+0001, list like
// any other. A key that does not decode to UTF-8 under the prefix asked for
// is left out, with a warning in the log.
//
// # Concurrency
//
// A Client and its buckets are safe for concurrent use and share one
// connection pool. Credentials come from the provider given in Options and are
// fetched per request, so a renewal applies to the next request.
package s3bucket

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/s3mount/s3mount/internal/bucket"
)

// Options configure a Client.
type Options struct {
	// Credentials provide the request signing keys.
	Credentials aws.CredentialsProvider
	// Region is the signing region. Default: the SDK's (AWS_REGION and
	// shared config), then us-east-1.
	Region string
	// Endpoint is the S3 endpoint URL. Default: the SDK's, which honours
	// AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL.
	Endpoint string
	// PathStyle forces path-style addressing. It is turned on by itself for
	// endpoints whose host is an IP address or localhost.
	PathStyle bool
	// UserAgent is added to the SDK's User-Agent.
	UserAgent string
	// Rejected, if set, is called with the access key ID of credentials S3
	// refused as expired or invalid; it should drop them if they are still
	// cached, and report whether a retry can use others. The request is then
	// retried once.
	Rejected func(accessKeyID string) bool
	// DeniedNearExpiry, if set, is called with the access key ID of a
	// request S3 denied (403); if it reports true, the denial is taken as
	// S3 seeing expired credentials and the request is retried once.
	DeniedNearExpiry func(accessKeyID string) bool

	// HeaderTimeout bounds the wait for response headers once a request
	// is sent (see Timeouts in the package doc). Zero means
	// DefaultHeaderTimeout, 30 s; negative, no limit.
	HeaderTimeout time.Duration
	// IdleTimeout bounds how long a transfer may make no progress: a
	// response body that yields no bytes, or a request body the store
	// accepts none of, for this long fails. Zero means DefaultIdleTimeout,
	// 30 s; negative, no limit.
	IdleTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Zero means
	// DefaultTLSHandshakeTimeout, 10 s; negative, no limit.
	TLSHandshakeTimeout time.Duration
	// Logger receives warnings, such as about keys a listing leaves out.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Client makes Buckets that share one S3 client.
type Client struct {
	api      *s3.Client
	creds    aws.CredentialsProvider
	rejected func(string) bool
	denied   func(string) bool
	log      *slog.Logger
	// slow is an operation option for the operations that do their work
	// before they answer: a longer header timeout.
	slow func(*s3.Options)
}

// slowAnswerFactor is how many times HeaderTimeout CopyObject,
// UploadPartCopy and CompleteMultipartUpload wait for headers.
const slowAnswerFactor = 20

// New returns a Client. It reads the SDK's shared configuration (including
// AWS_CA_BUNDLE) but always signs with opts.Credentials.
func New(ctx context.Context, opts Options) (*Client, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	idle := timeout(opts.IdleTimeout, DefaultIdleTimeout)
	// A BuildableClient keeps AWS_CA_BUNDLE working: the SDK can only add a
	// CA bundle to its own client type.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		tr.IdleConnTimeout = 90 * time.Second
		tr.ResponseHeaderTimeout = timeout(opts.HeaderTimeout, DefaultHeaderTimeout)
		tr.TLSHandshakeTimeout = timeout(opts.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
		tr.DialContext = stallDialer(idle)
	})
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The SDK's own warnings, such as about a connection it could not
		// reuse, go to the same log as ours instead of stderr.
		config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			level := slog.LevelDebug
			if c == logging.Warn {
				level = slog.LevelWarn
			}
			log.Log(context.Background(), level, "S3 SDK: "+fmt.Sprintf(format, v...))
		})),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.UserAgent != "" {
		loadOpts = append(loadOpts, config.WithAppID(opts.UserAgent))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	// Derive the slow client from the configured one, which carries the CA
	// bundle if there is one.
	var slowHTTP aws.HTTPClient = cfg.HTTPClient
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		slowHTTP = bc.WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout *= slowAnswerFactor
		})
	}
	if idle > 0 {
		cfg.HTTPClient = idleClient{client: cfg.HTTPClient, idle: idle}
		slowHTTP = idleClient{client: slowHTTP, idle: idle}
	}
	// The provider is already a cache; the S3 client uses it as it is.
	cfg.Credentials = markedCredentials{opts.Credentials}
	pathStyle := opts.PathStyle
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("S3 endpoint %q is not an http(s) URL", opts.Endpoint)
		}
		pathStyle = pathStyle || needsPathStyle(u.Hostname())
	} else if cfg.BaseEndpoint != nil {
		if u, err := url.Parse(*cfg.BaseEndpoint); err == nil {
			pathStyle = pathStyle || needsPathStyle(u.Hostname())
		}
	}
	// A filesystem call has no caller to retry it: retry transient failures
	// a few more times than the SDK's default, without the client-side
	// retry quota that would turn a burst of failures into more failures.
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.RateLimiter = ratelimit.None
			// A response body cut short (say, a listing) is as transient
			// as a dropped connection.
			o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return aws.TrueTernary
				}
				return aws.UnknownTernary
			}))
		})
	}
	api := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = pathStyle
		// Ranged GETs carry no whole-object checksum; do not warn about it
		// on every read.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Client{api: api, creds: opts.Credentials, rejected: opts.Rejected, denied: opts.DeniedNearExpiry, log: log,
		slow: func(o *s3.Options) { o.HTTPClient = slowHTTP }}, nil
}

// needsPathStyle reports whether a host cannot take bucket subdomains.
func needsPathStyle(host string) bool {
	return host == "localhost" || net.ParseIP(host) != nil
}

// Bucket returns the named bucket.
func (c *Client) Bucket(name string) bucket.Bucket {
	return &s3Bucket{api: c.api, name: name, creds: c.creds, rejected: c.rejected, denied: c.denied, log: c.log, slow: c.slow}
}

type s3Bucket struct {
	api      *s3.Client
	name     string
	creds    aws.CredentialsProvider
	rejected func(string) bool
	denied   func(string) bool
	log      *slog.Logger
	slow     func(*s3.Options)
}

// retried runs call, and runs it once more if S3 refused its credentials
// and new ones can be had: credentials may expire between being fetched
// and being checked, and a request in flight across a renewal must not fail.
func retried[T any](ctx context.Context, b *s3Bucket, call func() (T, error)) (T, error) {
	var key string
	if b.rejected != nil || b.denied != nil {
		// The cache answers this from memory; the request signs with the
		// same credentials unless a renewal slips in between.
		if c, err := b.creds.Retrieve(ctx); err == nil {
			key = c.AccessKeyID
		}
	}
	v, err := call()
	switch {
	case err == nil:
	case b.rejected != nil && credentialsRefused(err) && b.rejected(key):
		v, err = call()
	case b.denied != nil && isDenied(err) && b.denied(key):
		v, err = call()
	}
	return v, err
}

// isDenied reports whether S3 answered 403.
func isDenied(err error) bool {
	var re *awshttp.ResponseError
	return apiCode(err) == "AccessDenied" || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden)
}

// credentialsRefused reports whether S3 refused the request's credentials as
// expired or invalid, as opposed to denying the request.
func credentialsRefused(err error) bool {
	switch apiCode(err) {
	case "ExpiredToken", "InvalidAccessKeyId", "InvalidToken", "TokenRefreshRequired":
		return true
	}
	var re *awshttp.ResponseError
	// A HEAD response has no body; S3 answers an expired one with a bare 400.
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusBadRequest && re.Response != nil &&
		re.Response.Request != nil && re.Response.Request.Method == http.MethodHead
}

var _ bucket.Bucket = (*s3Bucket)(nil)

func (b *s3Bucket) Name() string { return b.name }

func (b *s3Bucket) List(ctx context.Context, req *bucket.ListRequest) (*bucket.ListPage, error) {
	in := &s3.ListObjectsV2Input{Bucket: &b.name, Prefix: aws.String(req.Prefix), EncodingType: types.EncodingTypeUrl}
	if req.Delimiter != "" {
		in.Delimiter = aws.String(req.Delimiter)
	}
	if req.ContinuationToken != "" {
		in.ContinuationToken = aws.String(req.ContinuationToken)
	}
	if req.MaxKeys > 0 {
		in.MaxKeys = aws.Int32(int32(req.MaxKeys))
	}
	out, err := retried(ctx, b, func() (*s3.ListObjectsV2Output, error) { return b.api.ListObjectsV2(ctx, in) })
	if err != nil {
		return nil, b.wrap(err, "list", req.Prefix)
	}
	page := &bucket.ListPage{
		Objects:        make([]bucket.ObjectInfo, 0, len(out.Contents)),
		CommonPrefixes: make([]string, 0, len(out.CommonPrefixes)),
	}
	// A store that does not know EncodingType does not say it used it, and
	// returns the keys as they are.
	encoded := out.EncodingType == types.EncodingTypeUrl
	key := func(raw string) (string, bool) {
		if !encoded {
			return raw, true
		}
		k, err := decodeKey(raw)
		if err == nil && !strings.HasPrefix(k, req.Prefix) {
			err = fmt.Errorf("not under the prefix %q", req.Prefix)
		}
		if err != nil {
			b.log.Warn("leaving out a key the store listed that cannot be decoded", "bucket", b.name, "key", raw, "error", err.Error())
			return "", false
		}
		return k, true
	}
	for _, o := range out.Contents {
		k, ok := key(aws.ToString(o.Key))
		if !ok {
			continue
		}
		page.Objects = append(page.Objects, bucket.ObjectInfo{
			Key:          k,
			Size:         aws.ToInt64(o.Size),
			ETag:         aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified),
		})
	}
	for _, p := range out.CommonPrefixes {
		if k, ok := key(aws.ToString(p.Prefix)); ok {
			page.CommonPrefixes = append(page.CommonPrefixes, k)
		}
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextContinuationToken = aws.ToString(out.NextContinuationToken)
		if page.NextContinuationToken == "" {
			return nil, fmt.Errorf("list s3://%s/%s: store said the listing is truncated but gave no continuation token", b.name, req.Prefix)
		}
	}
	return page, nil
}

// decodeKey decodes a key from a listing made with EncodingType=url, in
// which S3 and MinIO escape bytes as %XX and spaces as '+'. It fails on a
// malformed escape and on a result that is not UTF-8, which no S3 key is.
func decodeKey(s string) (string, error) {
	k, err := url.QueryUnescape(s)
	if err != nil {
		return "", err
	}
	if !utf8.ValidString(k) {
		return "", errors.New("decoded key is not UTF-8")
	}
	return k, nil
}

func (b *s3Bucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	out, err := retried(ctx, b, func() (*s3.HeadObjectOutput, error) {
		return b.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.name, Key: &key})
	})
	if err != nil {
		return bucket.ObjectInfo{}, b.wrap(err, "stat", key)
	}
	return bucket.ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		Mtime:        bucket.ParseMtime(out.Metadata[bucket.MtimeKey]),
	}, nil
}

// metadata returns the user metadata that records mtime, or nil.
func metadata(mtime time.Time) map[string]string {
	if mtime.IsZero() {
		return nil
	}
	return map[string]string{bucket.MtimeKey: bucket.FormatMtime(mtime)}
}

func (b *s3Bucket) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, mtime time.Time) (bucket.ObjectInfo, error) {
	out, err := retried(ctx, b, func() (*s3.PutObjectOutput, error) {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return b.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &b.name, Key: &key, Body: body, ContentLength: aws.Int64(size), Metadata: metadata(mtime),
		})
	})
	if err != nil {
		return bucket.ObjectInfo{}, b.wrap(err, "put", key)
	}
	return bucket.ObjectInfo{Key: key, Size: size, ETag: aws.ToString(out.ETag), LastModified: time.Now().UTC(), Mtime: mtime}, nil
}

func (b *s3Bucket) CreateMultipart(ctx context.Context, key string, mtime time.Time) (string, error) {
	out, err := retried(ctx, b, func() (*s3.CreateMultipartUploadOutput, error) {
		return b.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.name, Key: &key, Metadata: metadata(mtime)})
	})
	if err != nil {
		return "", b.wrap(err, "start upload", key)
	}
	return aws.ToString(out.UploadId), nil
}

func (b *s3Bucket) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (string, error) {
	out, err := retried(ctx, b, func() (*s3.UploadPartOutput, error) {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return b.api.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &b.name, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(number), Body: body, ContentLength: aws.Int64(size),
		})
	})
	if err != nil {
		return "", b.wrap(err, fmt.Sprintf("upload part %d of", number), key)
	}
	return aws.ToString(out.ETag), nil
}

func (b *s3Bucket) CompleteMultipart(ctx context.Context, key, uploadID string, parts []bucket.CompletedPart) (bucket.ObjectInfo, error) {
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	out, err := retried(ctx, b, func() (*s3.CompleteMultipartUploadOutput, error) {
		return b.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &b.name, Key: &key, UploadId: &uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		}, b.slow)
	})
	if err != nil {
		if apiCode(err) == "NoSuchUpload" {
			// A retry after the answer to an attempt that did complete the
			// upload was lost finds no upload left. The object then has
			// the ETag that only these parts give it.
			if want, ok := multipartETag(parts); ok {
				if info, serr := b.Stat(ctx, key); serr == nil && strings.Trim(info.ETag, `"`) == want {
					b.log.Debug("the answer to a completed upload was lost; the object is in place", "object", "s3://"+b.name+"/"+key)
					return bucket.ObjectInfo{Key: key, ETag: info.ETag, LastModified: info.LastModified}, nil
				}
			}
		}
		return bucket.ObjectInfo{}, b.wrap(err, "complete upload", key)
	}
	return bucket.ObjectInfo{Key: key, ETag: aws.ToString(out.ETag), LastModified: time.Now().UTC()}, nil
}

// multipartETag returns the ETag, unquoted, of the object that completing
// an upload of parts makes: the MD5 of the parts' MD5s, a dash and the
// number of parts. It reports false if a part's ETag is not an MD5, as
// with some kinds of server-side encryption.
func multipartETag(parts []bucket.CompletedPart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

func (b *s3Bucket) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := retried(ctx, b, func() (*s3.AbortMultipartUploadOutput, error) {
		return b.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.name, Key: &key, UploadId: &uploadID})
	})
	if err != nil && apiCode(err) != "NoSuchUpload" {
		return b.wrap(err, "abort upload", key)
	}
	return nil
}

func (b *s3Bucket) Delete(ctx context.Context, key string) error {
	if _, err := retried(ctx, b, func() (*s3.DeleteObjectOutput, error) {
		return b.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.name, Key: &key})
	}); err != nil {
		return b.wrap(err, "delete", key)
	}
	return nil
}

func (b *s3Bucket) Copy(ctx context.Context, src, dst string, size int64, mtime time.Time) (bucket.ObjectInfo, error) {
	if size > bucket.MaxPartCopySize {
		return b.copyInParts(ctx, src, dst, size, mtime)
	}
	in := &s3.CopyObjectInput{Bucket: &b.name, Key: &dst, CopySource: aws.String(copySource(b.name, src))}
	if !mtime.IsZero() {
		in.Metadata = metadata(mtime)
		in.MetadataDirective = types.MetadataDirectiveReplace
	}
	if _, err := retried(ctx, b, func() (*s3.CopyObjectOutput, error) { return b.api.CopyObject(ctx, in, b.slow) }); err != nil {
		return bucket.ObjectInfo{}, b.wrap(err, "copy to "+dst+" from", src)
	}
	return b.Stat(ctx, dst)
}

// copyPartSize is the part size of copies above MaxPartCopySize.
const copyPartSize = 512 << 20

// copyInParts copies an object too large for CopyObject with UploadPartCopy.
func (b *s3Bucket) copyInParts(ctx context.Context, src, dst string, size int64, mtime time.Time) (bucket.ObjectInfo, error) {
	if mtime.IsZero() {
		if info, err := b.Stat(ctx, src); err == nil {
			mtime = info.Mtime
		}
	}
	id, err := b.CreateMultipart(ctx, dst, mtime)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	var parts []bucket.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+copyPartSize, n+1 {
		end := min(off+copyPartSize, size) - 1
		out, err := retried(ctx, b, func() (*s3.UploadPartCopyOutput, error) {
			return b.api.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
				Bucket: &b.name, Key: &dst, UploadId: &id, PartNumber: aws.Int32(n),
				CopySource: aws.String(copySource(b.name, src)), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			}, b.slow)
		})
		if err != nil {
			b.AbortMultipart(context.WithoutCancel(ctx), dst, id)
			return bucket.ObjectInfo{}, b.wrap(err, "copy part to "+dst+" from", src)
		}
		parts = append(parts, bucket.CompletedPart{Number: n, ETag: aws.ToString(out.CopyPartResult.ETag)})
	}
	info, err := b.CompleteMultipart(ctx, dst, id, parts)
	if err != nil {
		b.AbortMultipart(context.WithoutCancel(ctx), dst, id)
	}
	return info, err
}

// copySource is the x-amz-copy-source value for key: URL-encoded, with
// slashes kept.
func copySource(bucketName, key string) string {
	return bucketName + "/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
}

func (b *s3Bucket) Read(ctx context.Context, key string, offset, length int64, etag string) (io.ReadCloser, error) {
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := "bytes=" + strconv.FormatInt(offset, 10) + "-"
	if length > 0 {
		rng += strconv.FormatInt(offset+length-1, 10)
	}
	in := &s3.GetObjectInput{Bucket: &b.name, Key: &key, Range: &rng}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	out, err := retried(ctx, b, func() (*s3.GetObjectOutput, error) { return b.api.GetObject(ctx, in) })
	if err != nil {
		if apiCode(err) == "InvalidRange" {
			// Reading at or past the end: nothing to read.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.wrap(err, "read", key)
	}
	if n := expectedLength(out.ContentLength, out.ContentRange); n >= 0 {
		return &fullBody{ReadCloser: out.Body, left: n}, nil
	}
	return out.Body, nil
}

// apiCode returns the S3 error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wrap turns an SDK error into a bucket error naming the operation and the
// s3:// location.
func (b *s3Bucket) wrap(err error, op, key string) error {
	where := op + " s3://" + b.name + "/" + key
	var kind error
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := apiCode(err)
	switch {
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		kind = bucket.ErrNotFound
	case code == "ExpiredToken" || code == "InvalidAccessKeyId" || code == "InvalidToken" || code == "TokenRefreshRequired":
		kind = bucket.ErrCredentials
	case op == "stat" && status == http.StatusBadRequest:
		// A HEAD response has no body to name the error. S3 answers a HEAD
		// signed with expired credentials with a bare 400.
		kind = bucket.ErrCredentials
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		kind = bucket.ErrStale
	case code == "AccessDenied" || status == http.StatusForbidden:
		kind = bucket.ErrPermission
	case isCredentialsFailure(err):
		kind = bucket.ErrCredentials
	}
	if kind == nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return &Error{Op: where, Kind: kind, Err: err}
}

// isCredentialsFailure reports whether the request failed because the
// credentials provider did.
func isCredentialsFailure(err error) bool {
	var ce *credentialsError
	return errors.As(err, &ce)
}

// markedCredentials wraps the provider's errors in credentialsError, so that
// a request that failed for want of credentials can be told apart.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// Error is a classified store error. It matches its Kind with errors.Is and
// unwraps to the SDK's error.
type Error struct {
	Op   string
	Kind error
	Err  error
}

func (e *Error) Error() string { return e.Op + ": " + e.Kind.Error() + ": " + e.Err.Error() }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the SDK's error.
func (e *Error) Unwrap() error { return e.Err }
