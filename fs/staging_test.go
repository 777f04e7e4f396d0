package fs

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPrepareStagingRemovesCrashedMounts checks that the staging files of a
// mount that is no longer running are removed, and a live mount's kept.
func TestPrepareStagingRemovesCrashedMounts(t *testing.T) {
	root := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(root, "mount-"+strconv.Itoa(dead.Process.Pid)+"-abc")
	live := filepath.Join(root, "mount-"+strconv.Itoa(os.Getppid())+"-def")
	other := filepath.Join(root, "unsaved-123")
	for _, d := range []string{crashed, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "w-1"), []byte("x"), 0o600)
	}
	os.WriteFile(other, []byte("kept content"), 0o600)

	dir, err := prepareStaging(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Errorf("staging of a crashed mount still there: %v", err)
	}
	for _, keep := range []string{live, other, dir} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("staging dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	f, err := os.CreateTemp(dir, "w-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("staging file mode = %v, want 0600", fi.Mode().Perm())
	}
}
