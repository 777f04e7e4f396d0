#!/usr/bin/env bash
# cleanup-mounts.sh detaches s3mount FUSE mounts that tests left behind in
# temporary directories. A test binary killed by its timeout cannot run its
# cleanups; this runs after every `make test`, pass or fail.
set -euo pipefail
tmp="${TMPDIR:-/tmp}"
awk -v tmp="$tmp/" '$3 ~ /^fuse\.s3mount$/ && index($2, tmp) == 1 { print $2 }' /proc/mounts |
	while read -r mnt; do
		echo "cleanup-mounts: detaching $mnt" >&2
		umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || fusermount -uz "$mnt" 2>/dev/null || true
	done
