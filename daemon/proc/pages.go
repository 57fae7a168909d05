package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mapping is one address range of a process's memory map.
type Mapping struct {
	Start, End uint64
}

// Len is the mapping's length in bytes.
func (m Mapping) Len() uint64 { return m.End - m.Start }

// ReadOnlyFileMappings returns the mappings of the file path in the text of a maps file
// (/proc/<pid>/maps) that can be neither written nor shared: an executable's code and its
// constants. A file replaced on disk while mapped shows as "path (deleted)" and still counts.
// Writable mappings (the executable's initialised data) are never returned: dropping their
// pages would lose what the process wrote there.
func ReadOnlyFileMappings(maps []byte, path string) ([]Mapping, error) {
	var out []Mapping
	for line := range strings.SplitSeq(string(maps), "\n") {
		if line == "" {
			continue
		}
		// address perms offset dev inode [path]; the path may hold spaces.
		fields := strings.SplitN(line, " ", 6)
		if len(fields) < 5 {
			return nil, fmt.Errorf("%w: maps line %q", ErrMalformed, line)
		}
		name := ""
		if len(fields) == 6 {
			name = strings.TrimLeft(fields[5], " ")
		}
		if name != path && name != path+" (deleted)" {
			continue
		}
		perms := fields[1]
		if len(perms) != 4 || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("%w: maps range %q", ErrMalformed, fields[0])
		}
		out = append(out, Mapping{Start: start, End: end})
	}
	return out, nil
}

// ReleaseExecutablePages tells the kernel that this process no longer needs the pages of
// its own executable's code and constants that it has touched so far, and returns how many
// bytes of mappings it covered. Go runs every linked package's initialisation at start-up,
// and the kernel maps the file 64 KiB around each page touched, so a freshly started ramd
// has most of its 28 MB binary resident although an idle node runs a fraction of it. The
// pages stay in the page cache; whatever the process touches again comes back with a minor
// fault, so its resident set settles on the code it really runs. Writable mappings are left
// alone.
func ReleaseExecutablePages() (uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("proc: own executable: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("proc: read own maps: %w", err)
	}
	ms, err := ReadOnlyFileMappings(maps, exe)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, m := range ms {
		if err := dontNeed(m); err != nil {
			return total, fmt.Errorf("proc: release %x-%x: %w", m.Start, m.End, err)
		}
		total += m.Len()
	}
	return total, nil
}
