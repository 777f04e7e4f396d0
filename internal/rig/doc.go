// Package rig is the test rig for s3mount: real servers on loopback that
// stand in for a science platform and its object store.
//
// A rig is three pieces, all listening on 127.0.0.1 only:
//
//   - a real MinIO server (see StartMinIO), started from a binary built by
//     scripts/install-minio.sh, with a throwaway data directory and random
//     root credentials;
//   - a MAAP-compatible credentials endpoint (see StartMAAP) that answers
//     GET /api/members/self/awsAccess/workspaceBucket like the real MAAP API,
//     in its current nested shape or its older flat shape, and mints real
//     temporary credentials with STS AssumeRole against MinIO, restricted by a
//     session policy to exactly the authorized S3 paths;
//   - an S3 reverse proxy in front of MinIO (see StartProxy) that enforces the
//     expiry MAAP declared for each access key, answering ExpiredToken once it
//     has passed, even though MinIO's own credentials live at least 15
//     minutes. This lets tests use credentials that expire in seconds.
//
// Start wires the three together and optionally seeds sample data. The rig is
// used by the package tests of s3mount and by `make demo` through
// cmd/s3mount-rig.
package rig
