#!/usr/bin/env bash
# install-minio.sh installs the MinIO server used by the s3mount test rig
# (internal/rig) if it is not already present. It is idempotent: when
# $(go env GOPATH)/bin/minio exists and runs, it does nothing.
# The first build takes about three minutes.
set -euo pipefail

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

gopath="$(go env GOPATH)"
# GOPATH may list several directories; go install uses the first one.
gopath="${gopath%%:*}"
bin="${gopath}/bin/minio"

if [[ -x "${bin}" ]] && "${bin}" --version >/dev/null 2>&1; then
	echo "minio already installed at ${bin}"
	exit 0
fi

echo "building minio ${MINIO_VERSION} (takes a few minutes the first time)..." >&2
# Force the location FindMinIO looks in, whatever GOBIN says.
GOBIN="${gopath}/bin" go install "github.com/minio/minio@${MINIO_VERSION}"
"${bin}" --version >/dev/null
echo "minio installed at ${bin}"
