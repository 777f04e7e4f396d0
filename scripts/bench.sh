#!/usr/bin/env bash
# bench.sh measures reads through a real mount against the SDK reading the
# same object through the same proxy and MinIO, side by side in one run.
# Read the ratios, not the absolute numbers: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
S3MOUNT_REQUIRE_RIG=1 go test -run '^$' -bench 'BenchmarkRead' -benchtime "${BENCHTIME:-5x}" -count "${COUNT:-1}" ./fs | grep -v 'INFO rig'
