package proc

import "syscall"

// dontNeed drops this process's page-table entries for m (madvise MADV_DONTNEED). m must
// be a private read-only file mapping: its pages come back from the file on the next access.
func dontNeed(m Mapping) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.Start), uintptr(m.Len()), syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
