package rig

import (
	"encoding/json"
	"strings"
)

// Access levels of an AuthorizedPath.
const (
	AccessReadWrite = "read_write"
	AccessReadOnly  = "read_only"
)

// Types of an AuthorizedPath.
const (
	TypeWorkspace = "workspace"
	TypeOrg       = "org"
)

// AuthorizedPath is one entry of MAAP's authorized_s3_paths.
type AuthorizedPath struct {
	Bucket string // Bucket is the bucket name.
	Prefix string // Prefix is the key prefix without slashes at either end; "" means the whole bucket.
	Type   string // Type is "workspace" or "org".
	Access string // Access is "read_write" or "read_only".
}

// URI returns the path as s3://BUCKET/PREFIX, or s3://BUCKET for a whole
// bucket.
func (p AuthorizedPath) URI() string {
	if pre := p.prefix(); pre != "" {
		return "s3://" + p.Bucket + "/" + pre
	}
	return "s3://" + p.Bucket
}

// ReadWrite reports whether the path grants write access.
func (p AuthorizedPath) ReadWrite() bool { return p.Access == AccessReadWrite }

// prefix returns Prefix without leading or trailing slashes.
func (p AuthorizedPath) prefix() string { return strings.Trim(p.Prefix, "/") }

// objectARN returns the ARN of every object under the path.
func (p AuthorizedPath) objectARN() string {
	if pre := p.prefix(); pre != "" {
		return "arn:aws:s3:::" + p.Bucket + "/" + pre + "/*"
	}
	return "arn:aws:s3:::" + p.Bucket + "/*"
}

// policyDoc is an IAM policy document.
type policyDoc struct {
	Version   string
	Statement []statement
}

// statement is one IAM policy statement.
type statement struct {
	Effect    string
	Action    []string
	Resource  []string
	Condition map[string]map[string][]string `json:",omitempty"`
}

// SessionPolicy returns the session policy MAAP would attach to credentials
// for paths: ListBucket under each prefix and GetObject on every path, plus
// object writes, multipart upload and its listings on read_write paths.
// Listing a bucket root or any other prefix is denied. Statements are merged
// across paths to stay well under MinIO's 2048-byte limit on session
// policies.
func SessionPolicy(paths []AuthorizedPath) string {
	var (
		buckets   []string                // buckets in first-seen order
		listPre   = map[string][]string{} // bucket -> allowed s3:prefix patterns; a key per bucket seen
		wholeList = map[string]bool{}     // bucket -> listing unrestricted
		readObj   []string
		writeObj  []string
		rwBuckets []string
		seenRW    = map[string]bool{}
	)
	for _, p := range paths {
		if _, seen := listPre[p.Bucket]; !seen {
			buckets = append(buckets, p.Bucket)
			listPre[p.Bucket] = nil
		}
		if pre := p.prefix(); pre == "" {
			wholeList[p.Bucket] = true
		} else {
			listPre[p.Bucket] = append(listPre[p.Bucket], pre+"/*", pre)
		}
		readObj = append(readObj, p.objectARN())
		if p.ReadWrite() {
			writeObj = append(writeObj, p.objectARN())
			if !seenRW[p.Bucket] {
				seenRW[p.Bucket] = true
				rwBuckets = append(rwBuckets, "arn:aws:s3:::"+p.Bucket)
			}
		}
	}

	doc := policyDoc{Version: "2012-10-17"}
	for _, b := range buckets {
		st := statement{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{"arn:aws:s3:::" + b}}
		if !wholeList[b] {
			st.Condition = map[string]map[string][]string{"StringLike": {"s3:prefix": listPre[b]}}
		}
		doc.Statement = append(doc.Statement, st)
	}
	if len(readObj) > 0 {
		doc.Statement = append(doc.Statement, statement{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: readObj})
	}
	if len(writeObj) > 0 {
		doc.Statement = append(doc.Statement,
			statement{Effect: "Allow", Action: []string{
				"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
			}, Resource: writeObj},
			statement{Effect: "Allow", Action: []string{"s3:ListBucketMultipartUploads"}, Resource: rwBuckets},
		)
	}
	if len(doc.Statement) == 0 {
		// A policy must have a statement; this one allows nothing.
		doc.Statement = []statement{{Effect: "Deny", Action: []string{"s3:*"}, Resource: []string{"arn:aws:s3:::*"}}}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // cannot happen: the document is plain strings
	}
	return string(b)
}
