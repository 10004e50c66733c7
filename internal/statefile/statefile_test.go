package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestPrivateState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(dir); err != nil || mode(t, dir) != 0o700 {
		t.Fatalf("PrivateDir of a 0755 directory: %v, mode %04o", err, mode(t, dir))
	}
	p := filepath.Join(dir, "secret")
	if err := Write(p, []byte("one")); err != nil || mode(t, p) != 0o600 {
		t.Fatalf("Write: %v, mode %04o", err, mode(t, p))
	}
	if err := Write(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("after a rewrite: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".secret.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := CheckPrivate(p); err != nil {
		t.Errorf("a 0600 file: %v", err)
	}
	os.Chmod(p, 0o644)
	if err := CheckPrivate(p); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("a 0644 file: %v", err)
	}
	if err := CheckPrivate(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
	db := filepath.Join(dir, "muon.db")
	if err := Create(db); err != nil || mode(t, db) != 0o600 {
		t.Errorf("Create: %v, mode %04o", err, mode(t, db))
	}
}
