// Package humanize writes quantities for people to read.
package humanize

import "fmt"

// Bytes is a size in binary units with one decimal: 512 B, 1.5 KiB, 12.0 MiB;
// "?" for a negative size (one not known).
func Bytes(n int64) string {
	if n < 0 {
		return "?"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
