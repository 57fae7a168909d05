package proc

import (
	"errors"
	"os"
	"reflect"
	"runtime"
	"testing"
)

func TestReadOnlyFileMappings(t *testing.T) {
	t.Parallel()
	const exe = "/opt/ramd/bin/ramd"
	maps := `00400000-01081000 r-xp 00000000 fe:00 10012993                           /opt/ramd/bin/ramd
01081000-01ed9000 r--p 00c81000 fe:00 10012993                           /opt/ramd/bin/ramd
01ed9000-01f88000 rw-p 01ad9000 fe:00 10012993                           /opt/ramd/bin/ramd
01f88000-03fc5000 rw-p 00000000 00:00 0 
7f1734a03000-7f1734a27000 r--s 00000000 00:05 42                         /opt/ramd/bin/ramd
7f1734a28000-7f1734a9a000 r--p 00000000 fe:00 77                         /opt/ramd/bin/ramd-fence
7ffd1a3e2000-7ffd1a404000 rw-p 00000000 00:00 0                          [stack]
`
	deleted := "00400000-00500000 r-xp 00000000 fe:00 1 /opt/ramd/bin/ramd (deleted)\n"
	spaced := "00400000-00500000 r-xp 00000000 fe:00 1 /opt/my ramd/ramd\n"
	for _, tt := range []struct {
		name, maps, path string
		want             []Mapping
		err              bool
	}{
		{"code and constants, not data, shared, anonymous or another file", maps, exe,
			[]Mapping{{0x400000, 0x1081000}, {0x1081000, 0x1ed9000}}, false},
		{"a binary replaced on disk", deleted, exe, []Mapping{{0x400000, 0x500000}}, false},
		{"a path with a space", spaced, "/opt/my ramd/ramd", []Mapping{{0x400000, 0x500000}}, false},
		{"no mapping of the file", maps, "/usr/bin/other", nil, false},
		{"empty", "", exe, nil, false},
		{"too few fields", "00400000-00500000 r-xp 0\n", exe, nil, true},
		{"bad range", "zz-00500000 r-xp 00000000 fe:00 1 /opt/ramd/bin/ramd\n", exe, nil, true},
		{"inverted range", "00500000-00400000 r-xp 00000000 fe:00 1 /opt/ramd/bin/ramd\n", exe, nil, true},
	} {
		got, err := ReadOnlyFileMappings([]byte(tt.maps), tt.path)
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %x, want %x", tt.name, got, tt.want)
		}
	}
}

// The real thing on this test binary: its resident file pages drop, and it goes on running
// (the code it calls next comes back from the page cache).
func TestReleaseExecutablePages(t *testing.T) {
	if runtime.GOOS != "linux" || !Mounted() {
		t.Skip("needs Linux's /proc")
	}
	before, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	n, err := ReleaseExecutablePages()
	if err != nil || n == 0 {
		t.Fatalf("released %d bytes: %v", n, err)
	}
	after, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.File >= before.File {
		t.Errorf("file-backed resident memory %d bytes before, %d after", before.File, after.File)
	}
	if _, err := ParseStat([]byte("1 (x) S 0" + " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 7")); err != nil {
		t.Errorf("code after the release: %v", err)
	}
	t.Logf("released %d bytes of mappings; file-backed resident %d KiB before, %d KiB after", n, before.File>>10, after.File>>10)
}
