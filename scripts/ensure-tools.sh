#!/usr/bin/env bash
# ensure-tools.sh installs the ordinary tools the write tests drive through
# the mount (rsync, fio), from Debian's packages, when they are missing.
set -euo pipefail
missing=()
for tool in rsync fio; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "ensure-tools: installing ${missing[*]}..." >&2
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
if command -v apt-get >/dev/null; then
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
else
	echo "ensure-tools: install ${missing[*]} with your package manager" >&2
	exit 1
fi
