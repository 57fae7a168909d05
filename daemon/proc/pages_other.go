//go:build !linux

package proc

// dontNeed does nothing where madvise's MADV_DONTNEED is not Linux's.
func dontNeed(Mapping) error { return nil }
