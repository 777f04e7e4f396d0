#!/usr/bin/env bash
# cleanup-mounts.sh detaches s3mount FUSE mounts that tests left behind in
# temporary directories: a test binary killed by its timeout cannot run its
# cleanups. It runs after every `make test`, pass or fail. Only dead mounts
# (their server gone: "Transport endpoint is not connected") or hung ones
# (stat does not answer in 5 seconds) are detached; a live mount, such as
# another test run's, is left alone.
set -euo pipefail
tmp="${TMPDIR:-/tmp}"
awk -v tmp="$tmp/" '$3 ~ /^fuse\.s3mount$/ && index($2, tmp) == 1 { print $2 }' /proc/mounts |
	while read -r mnt; do
		if out=$(timeout 5 stat "$mnt" 2>&1); then
			continue
		elif [[ $? -ne 124 && "$out" != *"not connected"* ]]; then
			continue
		fi
		echo "cleanup-mounts: detaching dead mount $mnt" >&2
		umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || fusermount -uz "$mnt" 2>/dev/null || true
	done
