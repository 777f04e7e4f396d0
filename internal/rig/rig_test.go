package rig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// startRig starts a seeded rig for t and stops it when t ends. Without a
// minio binary it skips t, or fails it when S3MOUNT_REQUIRE_RIG=1.
func startRig(t *testing.T, opts Options) *Rig {
	t.Helper()
	RequireMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	r, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rig started in %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close rig: %v", err)
		}
	})
	return r
}

// fetch GETs the MAAP credentials endpoint with the given headers and
// returns the status, content type and body.
func fetch(t *testing.T, m *MAAP, header map[string]string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, m.URL+MAAPCredentialsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// nestedJSON mirrors the current MAAP response for decoding in tests.
type nestedJSON struct {
	Credentials struct {
		AccessKeyID     string `json:"aws_access_key_id"`
		SecretAccessKey string `json:"aws_secret_access_key"`
		SessionToken    string `json:"aws_session_token"`
		ExpiresAt       string `json:"expires_at"`
	} `json:"credentials"`
	Paths []struct {
		Bucket, Prefix, URI, Type, Access string
	} `json:"authorized_s3_paths"`
}

// flatJSON mirrors the older flat MAAP response for decoding in tests.
type flatJSON struct {
	BucketName      string `json:"aws_bucket_name"`
	BucketPrefix    string `json:"aws_bucket_prefix"`
	AccessKeyID     string `json:"aws_access_key_id"`
	SecretAccessKey string `json:"aws_secret_access_key"`
	SessionToken    string `json:"aws_session_token"`
	Expiration      string `json:"aws_session_expiration"`
}

// fetchNested fetches and decodes nested credentials with the rig's ticket.
func fetchNested(t *testing.T, r *Rig) nestedJSON {
	t.Helper()
	status, ctype, body := fetch(t, r.MAAP, map[string]string{"proxy-ticket": r.Ticket})
	if status != http.StatusOK || ctype != "application/json" {
		t.Fatalf("status %d, content type %q, body %s", status, ctype, body)
	}
	var n nestedJSON
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return n
}

// proxyClient returns an S3 client that reaches MinIO through the rig's
// proxy with the given credentials and does not retry.
func proxyClient(r *Rig, akid, secret, token string) *s3.Client {
	c := NewS3Client(r.Proxy.URL, akid, secret, token)
	return s3.New(c.Options(), func(o *s3.Options) { o.RetryMaxAttempts = 1 })
}

// wantCode fails t unless err is an S3 API error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("%s: want API error %s, got %v", what, code, err)
		return
	}
	if ae.ErrorCode() != code {
		t.Errorf("%s: want error code %s, got %s (%v)", what, code, ae.ErrorCode(), err)
	}
}

// keys lists the keys under prefix, failing t on error.
func keys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

func TestRig(t *testing.T) {
	r := startRig(t, Options{Seed: true})
	ctx := context.Background()

	t.Run("NestedCredentialsEnforcePaths", func(t *testing.T) {
		before := r.MAAP.Issued()
		n := fetchNested(t, r)
		if got := r.MAAP.Issued(); got != before+1 {
			t.Errorf("Issued() = %d, want %d", got, before+1)
		}
		c := n.Credentials
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
			t.Fatalf("empty credentials: %+v", c)
		}
		exp, err := time.Parse(MAAPExpiresLayout, c.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q: %v", c.ExpiresAt, err)
		}
		if !strings.HasSuffix(c.ExpiresAt, "+0000") {
			t.Errorf("expires_at %q is not UTC", c.ExpiresAt)
		}
		if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
			t.Errorf("expires in %v, want about 1h", d)
		}
		if len(n.Paths) != 3 {
			t.Fatalf("authorized_s3_paths = %+v", n.Paths)
		}
		for i, p := range DefaultPaths() {
			got := n.Paths[i]
			if got.Bucket != p.Bucket || got.Prefix != p.Prefix || got.URI != "s3://"+p.Bucket+"/"+p.Prefix || got.Type != p.Type || got.Access != p.Access {
				t.Errorf("path %d = %+v, want %+v", i, got, p)
			}
		}

		s3c := proxyClient(r, c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
		ws := "maap-ops-workspace"
		got := keys(t, s3c, ws, "jdoe/")
		for _, k := range []string{"jdoe/README.txt", "jdoe/results/run1.csv", "jdoe/empty-dir/", "jdoe/data/sample.bin"} {
			if !slices.Contains(got, k) {
				t.Errorf("listing jdoe/ lacks %s: %v", k, got)
			}
		}

		// Denied: the bucket root, other prefixes, HeadBucket, objects outside.
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(ws)})
		wantCode(t, "list bucket root", err, "AccessDenied")
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(ws), Prefix: aws.String("other-user/")})
		wantCode(t, "list other prefix", err, "AccessDenied")
		_, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ws), Key: aws.String("other-user/secret.txt")})
		wantCode(t, "get outside prefix", err, "AccessDenied")
		if _, err = s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(ws)}); err == nil {
			t.Error("HeadBucket allowed, want 403")
		}

		// The read-only path reads but refuses writes.
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("public-reference-data"), Key: aws.String("smap/v9/granules/g001.txt")})
		if err != nil {
			t.Fatalf("get from read-only path: %v", err)
		}
		b, _ := io.ReadAll(obj.Body)
		obj.Body.Close()
		if string(b) != "granule 001\n" {
			t.Errorf("g001.txt = %q", b)
		}
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("public-reference-data"), Key: aws.String("smap/v9/new.txt"), Body: strings.NewReader("x")})
		wantCode(t, "put to read-only path", err, "AccessDenied")
		_, err = s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("public-reference-data"), Key: aws.String("smap/v9/granules/g001.txt")})
		wantCode(t, "delete in read-only path", err, "AccessDenied")

		// The read-write paths take writes, deletes and multipart uploads.
		for _, p := range []struct{ bucket, key string }{{ws, "jdoe/new.txt"}, {"shared-project-bucket", "team-data/new.txt"}} {
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key), Body: strings.NewReader("hello")}); err != nil {
				t.Errorf("put s3://%s/%s: %v", p.bucket, p.key, err)
			}
			if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)}); err != nil {
				t.Errorf("delete s3://%s/%s: %v", p.bucket, p.key, err)
			}
		}
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ws), Key: aws.String("other-user/x.txt"), Body: strings.NewReader("x")})
		wantCode(t, "put outside prefix", err, "AccessDenied")

		mpu, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(ws), Key: aws.String("jdoe/big.bin")})
		if err != nil {
			t.Fatalf("create multipart upload: %v", err)
		}
		part := bytes.Repeat([]byte("p"), 5<<20)
		up, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(ws), Key: aws.String("jdoe/big.bin"), UploadId: mpu.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
		if err != nil {
			t.Fatalf("upload part: %v", err)
		}
		if _, err := s3c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(ws), Key: aws.String("jdoe/big.bin"), UploadId: mpu.UploadId}); err != nil {
			t.Errorf("list parts: %v", err)
		}
		if _, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(ws), Key: aws.String("jdoe/big.bin"), UploadId: mpu.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}},
		}); err != nil {
			t.Errorf("complete multipart upload: %v", err)
		}

		// The 5 MiB sample streams through the proxy intact.
		obj, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ws), Key: aws.String("jdoe/data/sample.bin")})
		if err != nil {
			t.Fatalf("get sample.bin: %v", err)
		}
		h := sha256.New()
		n64, err := io.Copy(h, obj.Body)
		obj.Body.Close()
		if err != nil || n64 != SampleBinSize || !bytes.Equal(h.Sum(nil), sha(SampleBin())) {
			t.Errorf("sample.bin: %d bytes, err %v, digest match %v", n64, err, bytes.Equal(h.Sum(nil), sha(SampleBin())))
		}

		// Presigned URLs carry the key in the query and keep working.
		ps, err := s3.NewPresignClient(s3c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ws), Key: aws.String("jdoe/README.txt")})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ps.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("presigned GET: status %d", resp.StatusCode)
		}
	})

	t.Run("FlatCredentials", func(t *testing.T) {
		r.MAAP.SetFlat(true)
		defer r.MAAP.SetFlat(false)
		status, _, body := fetch(t, r.MAAP, map[string]string{"proxy-ticket": r.Ticket})
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		var f flatJSON
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatal(err)
		}
		if f.BucketName != "maap-ops-workspace" || f.BucketPrefix != "jdoe" || f.AccessKeyID == "" || f.SecretAccessKey == "" || f.SessionToken == "" {
			t.Errorf("flat response %s", body)
		}
		exp, err := time.Parse(MAAPFlatExpiresLayout, f.Expiration)
		if err != nil {
			t.Fatalf("aws_session_expiration %q: %v", f.Expiration, err)
		}
		if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
			t.Errorf("expires in %v, want about 1h", d)
		}
		s3c := proxyClient(r, f.AccessKeyID, f.SecretAccessKey, f.SessionToken)
		if got := keys(t, s3c, "maap-ops-workspace", "jdoe/"); !slices.Contains(got, "jdoe/README.txt") {
			t.Errorf("listing jdoe/ = %v", got)
		}
	})

	t.Run("Authentication", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			header map[string]string
			want   int
		}{
			{"none", nil, http.StatusUnauthorized},
			{"bad ticket", map[string]string{"proxy-ticket": "PGT-wrong"}, http.StatusUnauthorized},
			{"bad bearer", map[string]string{"Authorization": "Bearer wrong"}, http.StatusUnauthorized},
			{"ticket as basic", map[string]string{"Authorization": "Basic " + r.Ticket}, http.StatusUnauthorized},
			{"proxy-ticket", map[string]string{"proxy-ticket": r.Ticket}, http.StatusOK},
			{"bearer", map[string]string{"Authorization": "Bearer " + r.Ticket}, http.StatusOK},
			{"api key", map[string]string{"X-MAAP-API-Key": r.Ticket}, http.StatusOK},
		} {
			status, ctype, body := fetch(t, r.MAAP, tc.header)
			if status != tc.want {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, status, tc.want, body)
			}
			if status == http.StatusUnauthorized && (ctype != "application/json" || !strings.Contains(string(body), `"message":"Unauthorized"`)) {
				t.Errorf("%s: 401 body %q (%s)", tc.name, body, ctype)
			}
		}
		resp, err := http.Post(r.MAAP.URL+MAAPCredentialsPath, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: status %d, want 405", resp.StatusCode)
		}
	})

	t.Run("Config", func(t *testing.T) {
		resp, err := http.Get(r.MAAP.URL + MAAPConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cfg struct {
			Endpoint map[string]string `json:"endpoint"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, err %v", resp.StatusCode, err)
		}
		if got := cfg.Endpoint["workspace_bucket_credentials"]; got != "members/self/awsAccess/workspaceBucket" {
			t.Errorf("workspace_bucket_credentials = %q", got)
		}
	})

	t.Run("ExpiryEnforcedByProxy", func(t *testing.T) {
		r.MAAP.SetLifetime(2 * time.Second)
		defer r.MAAP.SetLifetime(time.Hour)
		n := fetchNested(t, r)
		exp, err := time.Parse(MAAPExpiresLayout, n.Credentials.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(exp); d > 2*time.Second {
			t.Errorf("declared lifetime %v, want at most 2s", d)
		}
		s3c := proxyClient(r, n.Credentials.AccessKeyID, n.Credentials.SecretAccessKey, n.Credentials.SessionToken)
		if time.Now().Before(exp) {
			keys(t, s3c, "maap-ops-workspace", "jdoe/")
		}
		time.Sleep(time.Until(exp) + 100*time.Millisecond)

		rejected, requests := r.Proxy.Rejected(), r.Proxy.Requests()
		_, err = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("maap-ops-workspace"), Prefix: aws.String("jdoe/")})
		wantCode(t, "list after expiry", err, "ExpiredToken")
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusBadRequest {
			t.Errorf("HTTP status %d, want 400", re.HTTPStatusCode())
		}
		if got := r.Proxy.Rejected(); got != rejected+1 {
			t.Errorf("Rejected() = %d, want %d", got, rejected+1)
		}
		if got := r.Proxy.Requests(); got != requests+1 {
			t.Errorf("Requests() = %d, want %d", got, requests+1)
		}

		// HEAD responses have no body, so, as with AWS S3, the SDK only
		// sees a bare 400 (code "BadRequest").
		_, err = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("maap-ops-workspace"), Key: aws.String("jdoe/README.txt")})
		wantCode(t, "head after expiry", err, "BadRequest")
		if got := r.Proxy.Rejected(); got != rejected+2 {
			t.Errorf("Rejected() = %d after HEAD, want %d", got, rejected+2)
		}

		// Fresh credentials work again.
		n = fetchNested(t, r)
		s3c = proxyClient(r, n.Credentials.AccessKeyID, n.Credentials.SecretAccessKey, n.Credentials.SessionToken)
		keys(t, s3c, "maap-ops-workspace", "jdoe/")
	})

	t.Run("ExpiredPresignedURL", func(t *testing.T) {
		creds, err := r.MAAP.Mint(ctx, r.Paths, 0)
		if err != nil {
			t.Fatal(err)
		}
		s3c := proxyClient(r, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
		ps, err := s3.NewPresignClient(s3c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("maap-ops-workspace"), Key: aws.String("jdoe/README.txt")})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		resp, err := http.Get(ps.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/xml" ||
			!strings.HasPrefix(string(body), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>") {
			t.Errorf("status %d, type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})

	t.Run("Fault", func(t *testing.T) {
		r.Proxy.SetFault(func(w http.ResponseWriter, req *http.Request) bool {
			if strings.HasSuffix(req.URL.Path, "/README.txt") {
				WriteS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
				return true
			}
			return false
		})
		defer r.Proxy.SetFault(nil)
		s3c := proxyClient(r, r.MinIO.RootUser, r.MinIO.RootPassword, "")
		_, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("maap-ops-workspace"), Key: aws.String("jdoe/README.txt")})
		wantCode(t, "faulted get", err, "SlowDown")
		if _, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("maap-ops-workspace"), Key: aws.String("jdoe/results/run1.csv")}); err != nil {
			t.Errorf("unfaulted get: %v", err)
		}
	})

	t.Run("Modes", func(t *testing.T) {
		defer r.MAAP.SetMode(ModeOK)
		auth := map[string]string{"proxy-ticket": r.Ticket}
		for _, tc := range []struct {
			mode   Mode
			status int
			ctype  string
			check  func(body []byte) bool
		}{
			{ModeUnauthorized, 401, "application/json", func(b []byte) bool { return jsonMessage(b) == "Unauthorized" }},
			{ModeUnavailable, 503, "application/json", func(b []byte) bool { return jsonMessage(b) != "" }},
			{ModeServerError, 500, "application/json", func(b []byte) bool { return jsonMessage(b) != "" }},
			{ModeMalformedJSON, 200, "application/json", func(b []byte) bool { return len(b) > 0 && !json.Valid(b) }},
			{ModeHTML, 200, "text/html; charset=utf-8", func(b []byte) bool { return bytes.Contains(b, []byte("<html")) }},
			{ModeOK, 200, "application/json", func(b []byte) bool {
				var n nestedJSON
				return json.Unmarshal(b, &n) == nil && n.Credentials.AccessKeyID != ""
			}},
		} {
			r.MAAP.SetMode(tc.mode)
			issued := r.MAAP.Issued()
			status, ctype, body := fetch(t, r.MAAP, auth)
			if status != tc.status || ctype != tc.ctype || !tc.check(body) {
				t.Errorf("%v: status %d, type %q, body %q", tc.mode, status, ctype, body)
			}
			want := issued
			if tc.mode == ModeOK {
				want++
			}
			if got := r.MAAP.Issued(); got != want {
				t.Errorf("%v: Issued() = %d, want %d", tc.mode, got, want)
			}
		}

		r.MAAP.SetMode(ModeSlow)
		r.MAAP.SetSlowDelay(300 * time.Millisecond)
		began := time.Now()
		if status, _, body := fetch(t, r.MAAP, auth); status != 200 || time.Since(began) < 300*time.Millisecond {
			t.Errorf("slow: status %d after %v: %s", status, time.Since(began), body)
		}

		// A cancelled request stops the wait and mints nothing.
		r.MAAP.SetSlowDelay(time.Minute)
		issued := r.MAAP.Issued()
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, r.MAAP.URL+MAAPCredentialsPath, nil)
		req.Header.Set("proxy-ticket", r.Ticket)
		began = time.Now()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("slow with cancel: got status %d", resp.StatusCode)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("cancelled request took %v", d)
		}
		time.Sleep(100 * time.Millisecond)
		if got := r.MAAP.Issued(); got != issued {
			t.Errorf("cancelled slow request issued credentials")
		}
	})

	t.Run("MinIOAcceptsLargerPolicy", func(t *testing.T) {
		// MinIO re-encodes the policy before checking its 2048-byte limit.
		c, err := r.MAAP.Mint(ctx, manyPaths(), time.Hour)
		if err != nil {
			t.Fatalf("mint for %d paths: %v", len(manyPaths()), err)
		}
		s3c := proxyClient(r, c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
		keys(t, s3c, "maap-ops-workspace", "jdoe/")
	})

	t.Run("Env", func(t *testing.T) {
		env := r.Env()
		for _, want := range []string{
			"MAAP_API_HOST=" + r.MAAP.Host,
			"MAAP_API_HOST_SCHEME=http",
			"MAAP_PGT=" + r.Ticket,
			"AWS_ENDPOINT_URL_S3=" + r.Proxy.URL,
			"AWS_REGION=us-east-1",
		} {
			if !slices.Contains(env, want) {
				t.Errorf("Env() = %v lacks %s", env, want)
			}
		}
		for _, u := range []string{r.MAAP.URL, r.Proxy.URL, r.MinIO.Endpoint} {
			pu, err := url.Parse(u)
			if err != nil || pu.Hostname() != "127.0.0.1" {
				t.Errorf("%s is not on 127.0.0.1", u)
			}
		}
	})
}

// TestFlatOption checks that Options.Flat starts MAAP in the flat shape and
// that custom paths, including a whole bucket, are honoured.
func TestFlatOption(t *testing.T) {
	paths := []AuthorizedPath{
		{Bucket: "wsb", Prefix: "alice/", Type: TypeWorkspace, Access: AccessReadWrite},
		{Bucket: "open", Prefix: "", Type: TypeOrg, Access: AccessReadOnly},
	}
	r := startRig(t, Options{Paths: paths, Flat: true, Lifetime: 30 * time.Minute, Seed: true})
	status, _, body := fetch(t, r.MAAP, map[string]string{"X-MAAP-API-Key": r.Ticket})
	var f flatJSON
	if status != http.StatusOK || json.Unmarshal(body, &f) != nil {
		t.Fatalf("status %d: %s", status, body)
	}
	if f.BucketName != "wsb" || f.BucketPrefix != "alice" {
		t.Errorf("bucket %q prefix %q", f.BucketName, f.BucketPrefix)
	}
	exp, err := time.Parse(MAAPFlatExpiresLayout, f.Expiration)
	if err != nil || time.Until(exp) > 30*time.Minute || time.Until(exp) < 29*time.Minute {
		t.Errorf("expiration %q (%v)", f.Expiration, err)
	}
	s3c := proxyClient(r, f.AccessKeyID, f.SecretAccessKey, f.SessionToken)
	if got := keys(t, s3c, "wsb", "alice/"); !slices.Contains(got, "alice/README.txt") {
		t.Errorf("listing alice/ = %v", got)
	}
	// The whole-bucket read-only path lists from the root but refuses writes.
	if got := keys(t, s3c, "open", ""); !slices.Contains(got, "README.txt") {
		t.Errorf("listing open bucket = %v", got)
	}
	_, err = s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String("x"), Body: strings.NewReader("x")})
	wantCode(t, "put to read-only bucket", err, "AccessDenied")
}

// TestStartMinIOStop checks that Stop removes the data dir and can be called
// twice.
func TestStartMinIOStop(t *testing.T) {
	if _, err := FindMinIO(); err != nil {
		if os.Getenv("S3MOUNT_REQUIRE_RIG") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	m, err := StartMinIO(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	if _, err := m.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Errorf("list buckets as root: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(m.dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s still there: %v", m.dataDir, err)
	}
	if _, err := http.Get(m.Endpoint + "/minio/health/live"); err == nil {
		t.Error("minio still answers after Stop")
	}
}

// manyPaths returns DefaultPaths plus two more, one sharing a bucket.
func manyPaths() []AuthorizedPath {
	return append(DefaultPaths(),
		AuthorizedPath{Bucket: "maap-ops-workspace", Prefix: "shared/jdoe", Type: TypeOrg, Access: AccessReadOnly},
		AuthorizedPath{Bucket: "another-org-bucket", Prefix: "project-x/data", Type: TypeOrg, Access: AccessReadWrite},
	)
}

func TestSessionPolicyIsCompact(t *testing.T) {
	paths := manyPaths()
	p := SessionPolicy(paths)
	if len(p) > 1500 {
		t.Errorf("policy for %d paths is %d bytes, want well under 2048:\n%s", len(paths), len(p), p)
	}
	var doc policyDoc
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		t.Fatal(err)
	}
	// Two paths in one bucket share one ListBucket statement.
	var lists int
	for _, st := range doc.Statement {
		if slices.Equal(st.Action, []string{"s3:ListBucket"}) {
			lists++
			if st.Condition == nil {
				t.Errorf("unconditional ListBucket: %+v", st)
			}
		}
	}
	if lists != 4 {
		t.Errorf("%d ListBucket statements, want 4:\n%s", lists, p)
	}
	t.Logf("%d bytes: %s", len(p), p)
}

func TestAccessKeyID(t *testing.T) {
	for _, tc := range []struct {
		name, auth, query, want string
	}{
		{"header", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "", "AKIDEXAMPLE"},
		{"header no spaces", "AWS4-HMAC-SHA256 SignedHeaders=host,Credential=K2/20260304/us-east-1/s3/aws4_request,Signature=abc", "", "K2"},
		{"query", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K3%2F20260304%2Fus-east-1%2Fs3%2Faws4_request", "K3"},
		{"unsigned", "", "", ""},
		{"sigv2", "AWS K4:sig", "", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/b/k?"+tc.query, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if got := AccessKeyID(req); got != tc.want {
			t.Errorf("%s: AccessKeyID = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSampleBinIsDeterministic(t *testing.T) {
	a, b := SampleBin(), SampleBin()
	if len(a) != SampleBinSize || !bytes.Equal(a, b) {
		t.Fatal("SampleBin differs between calls")
	}
	if bytes.Count(a, []byte{0}) > len(a)/100 {
		t.Error("SampleBin does not look random")
	}
}

// jsonMessage returns the "message" field of a JSON body, or "".
func jsonMessage(b []byte) string {
	var m struct{ Message string }
	_ = json.Unmarshal(b, &m)
	return m.Message
}

// sha returns the SHA-256 digest of b.
func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
