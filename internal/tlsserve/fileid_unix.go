//go:build unix

package tlsserve

import (
	"os"
	"syscall"
)

// fileID is the device and inode of fi: a file renamed into place has a new
// one even when its size and modification time match the old file's.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) // the fields' types differ between platforms
	}
	return 0, 0
}
