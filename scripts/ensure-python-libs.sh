#!/usr/bin/env bash
# ensure-python-libs.sh installs the Python libraries the notebook test
# (fs/notebook_test.go) drives through the mount: h5py, NumPy, pandas,
# netCDF4 and xarray, from Debian's packages, for Debian's /usr/bin/python3
# (the python3 first on PATH may be another install). It runs `apt-get
# update` once, and only when something is missing.
set -euo pipefail

py=/usr/bin/python3
modules=(h5py numpy pandas netCDF4 xarray)
declare -A package=([h5py]=python3-h5py [numpy]=python3-numpy [pandas]=python3-pandas
	[netCDF4]=python3-netcdf4 [xarray]=python3-xarray)

# One start of Python when everything is there; one per module otherwise.
"$py" -c "import $(IFS=,; echo "${modules[*]}")" >/dev/null 2>&1 && exit 0

missing=()
for m in "${modules[@]}"; do
	"$py" -c "import $m" >/dev/null 2>&1 || missing+=("${package[$m]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "ensure-python-libs: installing ${missing[*]} from Debian's packages..." >&2
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
	echo "ensure-python-libs: no apt-get here; install ${missing[*]} (for $py) with your package manager" >&2
	exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

status=0
for m in "${modules[@]}"; do
	if ! "$py" -c "import $m" >/dev/null 2>&1; then
		echo "ensure-python-libs: $py still cannot import $m (package ${package[$m]})" >&2
		status=1
	fi
done
exit $status
