package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallFS mounts a tmpfs of size bytes on dir (created when missing) for the rest of the
// test: a filesystem that fills up, for the full-disk faults. The mount is detached at
// cleanup, so a process still using it does not keep the test from ending. Mounting needs
// root; without it the test skips, or fails under RAMD_TEST_REQUIRE_REAL=1.
func SmallFS(t testing.TB, dir string, size int64) {
	t.Helper()
	if size < 1<<20 {
		t.Fatalf("SmallFS: size %d below 1 MiB", size)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatalf("SmallFS: %v", err)
	}
	opts := fmt.Sprintf("size=%d,mode=0711", size)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		if errors.Is(err, syscall.EPERM) {
			Missing(t, "a tmpfs mount (needs root): %v", err)
		}
		t.Fatalf("SmallFS: mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("SmallFS: unmount %s: %v", dir, err)
		}
	})
}

// Fill allocates a file in dir that leaves about free bytes available on dir's filesystem,
// and returns its path; removing the file frees the space again.
func Fill(t testing.TB, dir string, free int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("Fill: statfs %s: %v", dir, err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		t.Fatalf("Fill: %s has %d bytes available, not more than the %d to leave", dir, avail, free)
	}
	path := filepath.Join(dir, "ramd-test-filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("Fill: %v", err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, avail-free); err != nil {
		t.Fatalf("Fill: allocate %d bytes in %s: %v", avail-free, path, err)
	}
	return path
}
