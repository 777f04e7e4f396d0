#!/usr/bin/env bash
# bench-write-memory.sh writes a file (2 GiB by default) through a real mount
# of the demo rig and reports the s3mount process's peak resident memory
# (VmHWM), to compare with --write-memory (256 MiB by default).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${SIZE_MIB:-2048}"
make -s build bin/s3mount-rig
mnt="$(mktemp -d)"
log="$(mktemp)"
./bin/s3mount-rig --s3mount bin/s3mount "$mnt" >"$log" 2>&1 &
rig=$!
cleanup() {
	kill -INT "$rig" 2>/dev/null || true
	wait "$rig" 2>/dev/null || true
	rm -rf "$mnt" "$log"
}
trap cleanup EXIT
for _ in $(seq 60); do grep -q "What to try" "$log" && break; sleep 1; done
pid="$(pgrep -f "bin/s3mount --foreground $mnt")"
start=$(date +%s.%N)
dd if=/dev/zero of="$mnt/maap-ops-workspace/jdoe/big.bin" bs=1M count="$size_mib" status=none
end=$(date +%s.%N)
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
awk -v s="$size_mib" -v a="$start" -v b="$end" -v r="$rss_kib" 'BEGIN {
	printf "wrote %d MiB in %.1f s (%.0f MiB/s); s3mount peak RSS %.0f MiB (write budget 256 MiB)\n", s, b-a, s/(b-a), r/1024 }'
