#!/usr/bin/env bash
# bench.sh runs the benchmark harness, cmd/s3mount-bench: s3mount (bin/s3mount,
# built by `make build`) against the SDK's ceiling, s3fs and rclone mount on
# the rig's MinIO, side by side, printing a markdown report. `make bench` runs
# it after installing MinIO and FUSE support. It installs the other tools it
# drives itself (scripts/ensure-bench-tools.sh). The environment configures
# the run; see `go doc ./cmd/s3mount-bench` (BENCH_QUICK=1 for a run under two
# minutes, S3MOUNT_FLAGS for extra s3mount flags, BENCH_OUT=FILE to keep the
# report). Whatever happens, it leaves no mount behind.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(id -u)" != 0 ]]; then
	echo "bench: run as root: the benchmark mounts FUSE filesystems and drops the page cache" >&2
	exit 1
fi
# Peers are measured unless BENCH_PEERS=0, or on a quick run unless
# BENCH_PEERS=1; the harness decides the same way.
peers=--peers
if [[ "${BENCH_PEERS:-}" == 0 || ( -z "${BENCH_PEERS:-}" && "${BENCH_QUICK:-}" == 1 ) ]]; then
	peers=
fi
./scripts/ensure-bench-tools.sh $peers
[[ -x bin/s3mount ]] || make -s build
go build -o bin/s3mount-bench ./cmd/s3mount-bench

# Mountpoints, logs and the local copy of the HDF5 file live on disk.
workdir="$(mktemp -d "${BENCH_WORKDIR_PARENT:-/var/tmp}/s3mount-bench.XXXXXX")"
# MinIO keeps its data in memory, on tmpfs, so that dropping the page cache
# leaves the server's side alone; a crash must not leave gigabytes there.
shmdir=""
if [[ -d /dev/shm && -w /dev/shm ]]; then
	shmdir="$(mktemp -d /dev/shm/s3mount-bench.XXXXXX)"
fi
status=1
cleanup() {
	# The harness unmounts everything itself; this catches what a crash or
	# a kill -9 of the harness leaves.
	awk -v d="$workdir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | while read -r m; do
		echo "bench: detaching leftover mount $m" >&2
		umount -l "$m" 2>/dev/null || true
	done
	[[ -z "$shmdir" ]] || rm -rf "$shmdir"
	if [[ $status == 0 ]] && ! grep -qF " $workdir/" /proc/mounts; then
		rm -rf "$workdir"
	else
		echo "bench: failed; the mounts' logs are in $workdir/logs" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
BENCH_WORKDIR="$workdir" BENCH_SHMDIR="$shmdir" ./bin/s3mount-bench && status=0 || status=$?
exit $status
