package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// debianPython is the interpreter of Debian's python3-* packages; the
// python3 first on PATH may be another install, without them.
const debianPython = "/usr/bin/python3"

// notebookModules are what testdata/notebook.py imports.
const notebookModules = "h5py, numpy, pandas, netCDF4, xarray"

// The files testdata/notebook.py leaves: the inputs it writes, which stand
// for data already in the bucket, and the results of its analysis.
var (
	notebookInputs  = []string{"swath.h5", "sst.nc", "stations.csv"}
	notebookOutputs = []string{"sst_mean.nc", "by_site.csv", "summary.json"}
)

// requireNotebookModules skips t when Debian's Python cannot import what
// the notebook script needs, or fails it when S3MOUNT_REQUIRE_RIG=1 (as
// under make test, whose deps install them).
func requireNotebookModules(t *testing.T) {
	t.Helper()
	out, err := runCmd(time.Minute, notebookEnv, debianPython, "-c", "import "+notebookModules)
	if err == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	msg := fmt.Sprintf("%s cannot import %s (%v: %s); run scripts/ensure-python-libs.sh as root (make test runs it)",
		debianPython, notebookModules, err, lines[len(lines)-1])
	if os.Getenv("S3MOUNT_REQUIRE_RIG") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// notebookEnv keeps a user's own site-packages out of Debian's Python, and
// bytecode out of testdata.
var notebookEnv = []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONNOUSERSITE=1"}

// TestNotebookScript works with scientific files in the workspace as a
// notebook does, with Debian's h5py, netCDF4, xarray and pandas:
// testdata/notebook.py writes an HDF5 swath (a 12 MiB chunked dataset, so
// a multipart upload whose first part HDF5 patches at close), a NetCDF grid
// and a CSV, then opens them again, averages the grid with xarray, reads a
// window and a strided thumbnail of the swath with h5py, groups the CSV
// with pandas, and writes a NetCDF, a CSV and a JSON summary back.
//
// A local disk is the oracle: the script runs there first, and every file
// it leaves on the mount, read through the mount and as stored in the
// bucket, must be byte for byte the local one. HDF5 and NetCDF files are
// compared as bytes too: as h5py and netCDF4 write them here, they hold no
// time or path, so the same script leaves the same bytes wherever and
// whenever it runs. (xarray's h5netcdf engine, by contrast, stores HDF5
// object times, to the second: files written with it would have to be
// compared by their decoded contents.)
//
// The analysis runs twice on the mount: on inputs another client put in
// the bucket (so its reads are ranged GETs of objects this mount has never
// seen), and on inputs the script has just written through the mount.
func TestNotebookScript(t *testing.T) {
	requireNotebookModules(t)
	script, err := filepath.Abs(filepath.Join("testdata", "notebook.py"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWriteTest(t)
	run := func(mode, dir string) (string, time.Duration, error) {
		began := time.Now()
		out, err := runCmd(2*time.Minute, notebookEnv, debianPython, script, mode, dir)
		return out, time.Since(began), err
	}

	local := t.TempDir()
	localOut, took, err := run("all", local)
	if err != nil {
		t.Fatalf("on a local disk: %v\n%s", err, localOut)
	}
	t.Logf("on a local disk in %v", took.Round(time.Millisecond))
	oracle := map[string][]byte{}
	for _, name := range slices.Concat(notebookInputs, notebookOutputs) {
		data, err := os.ReadFile(filepath.Join(local, name))
		if err != nil {
			t.Fatal(err)
		}
		oracle[name] = data
	}

	// wantFiles compares the named files in sub, through the mount and in
	// the bucket, with the oracle's.
	wantFiles := func(sub string, names []string) {
		t.Helper()
		for _, name := range names {
			got, err := os.ReadFile(filepath.Join(w.dir, sub, name))
			if err != nil {
				t.Errorf("reading %s/%s through the mount: %v", sub, name, err)
			} else if d := bytesDiff(got, oracle[name]); d != "" {
				t.Errorf("%s/%s through the mount = %s", sub, name, d)
			}
			w.wantObject(t, wsBucket, w.prefix+sub+"/"+name, oracle[name])
		}
	}

	// The inputs are in the bucket already, put there by another client;
	// the notebook reads them and writes its results next to them.
	for _, name := range notebookInputs {
		putObject(t, w.r, wsBucket, w.prefix+"from-bucket/"+name, oracle[name])
	}
	out, took, err := run("analyse", filepath.Join(w.dir, "from-bucket"))
	t.Logf("analysis of inputs in the bucket, on the mount, in %v", took.Round(time.Millisecond))
	if err != nil || out != localOut {
		t.Errorf("analysis of inputs in the bucket, on the mount: %v\n%s\nwant, as on a local disk:\n%s", err, out, localOut)
	}
	wantFiles("from-bucket", slices.Concat(notebookInputs, notebookOutputs))

	// The whole notebook on the mount: inputs written, reopened, results
	// written back.
	if err := os.Mkdir(filepath.Join(w.dir, "written"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, took, err = run("all", filepath.Join(w.dir, "written"))
	t.Logf("the whole notebook on the mount in %v", took.Round(time.Millisecond))
	if err != nil || out != localOut {
		t.Errorf("the whole notebook on the mount: %v\n%s\nwant, as on a local disk:\n%s", err, out, localOut)
	}
	wantFiles("written", slices.Concat(notebookInputs, notebookOutputs))

	// Nothing else was stored: no temporary or lock files.
	var want []string
	for _, sub := range []string{"from-bucket", "written"} {
		for _, name := range slices.Concat(notebookInputs, notebookOutputs) {
			want = append(want, sub+"/"+name)
		}
	}
	slices.Sort(want)
	if got := objectKeys(t, w, w.prefix); !slices.Equal(got, want) {
		t.Errorf("objects under s3://%s/%s = %q, want %q", wsBucket, w.prefix, got, want)
	}
}

// bytesDiff says how got differs from want, or returns "" if they are
// equal: sizes, and the offset of the first difference.
func bytesDiff(got, want []byte) string {
	if bytesEqual(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%s, want %s as on a local disk; first difference at byte %d", describe(got), describe(want), i)
}
