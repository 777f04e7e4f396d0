#!/usr/bin/env bash
# ensure-fuse.sh checks that this machine can mount FUSE filesystems, and
# installs fuse3 (for fusermount3) when a non-root user needs it.
set -euo pipefail

if [[ ! -e /dev/fuse ]]; then
	echo "ensure-fuse: /dev/fuse is missing; load the fuse module (modprobe fuse) or, in a container, run it with --device /dev/fuse" >&2
	exit 1
fi
# Root mounts directly with mount(2) and needs nothing else.
if [[ "$(id -u)" == 0 ]]; then
	exit 0
fi
if command -v fusermount3 >/dev/null || command -v fusermount >/dev/null; then
	exit 0
fi
echo "ensure-fuse: installing fuse3 for fusermount3..." >&2
if command -v apt-get >/dev/null && command -v sudo >/dev/null; then
	sudo apt-get update -qq && sudo apt-get install -y -qq fuse3
else
	echo "ensure-fuse: install your distribution's fuse3 package (it provides fusermount3)" >&2
	exit 1
fi
