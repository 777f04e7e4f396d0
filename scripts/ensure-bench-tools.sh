#!/usr/bin/env bash
# ensure-bench-tools.sh installs what `make bench` drives besides s3mount,
# from Debian's packages, when it is missing: fio, and python3-h5py for
# Debian's /usr/bin/python3 (the python3 first on PATH may be another
# install). With --peers it also installs the peers s3mount is compared
# with, s3fs and rclone (s3fs brings fuse, whose fusermount rclone mount
# needs). It runs `apt-get update` once, and only when something is missing.
# fio and h5py are required; a peer that cannot be installed is reported,
# and the benchmark runs without it.
set -uo pipefail

peers=0
[[ "${1:-}" == "--peers" ]] && peers=1

missing=()
command -v fio >/dev/null || missing+=(fio)
if ! /usr/bin/python3 -c 'import h5py' >/dev/null 2>&1; then
	missing+=(python3-h5py)
fi
if [[ $peers == 1 ]]; then
	command -v s3fs >/dev/null || missing+=(s3fs)
	command -v rclone >/dev/null || missing+=(rclone)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
	echo "ensure-bench-tools: no apt-get here; install ${missing[*]} with your package manager" >&2
else
	echo "ensure-bench-tools: installing ${missing[*]} from Debian's packages..." >&2
	$sudo apt-get update -qq || echo "ensure-bench-tools: apt-get update failed" >&2
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
		# One package that cannot be had must not keep the others out.
		for p in "${missing[@]}"; do
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$p" >/dev/null ||
				echo "ensure-bench-tools: could not install $p" >&2
		done
	fi
fi

status=0
command -v fio >/dev/null || { echo "ensure-bench-tools: fio is missing, and the benchmark needs it" >&2; status=1; }
/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1 ||
	{ echo "ensure-bench-tools: /usr/bin/python3 cannot import h5py (package python3-h5py), and the benchmark needs it" >&2; status=1; }
if [[ $peers == 1 ]]; then
	for p in s3fs rclone; do
		command -v "$p" >/dev/null || echo "ensure-bench-tools: $p is NOT installed; the benchmark will run without it" >&2
	done
fi
exit $status
