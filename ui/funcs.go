package ui

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/humanize"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"bytes":    humanize.Bytes,
	"shortDig": shortDigest,
	"join":     strings.Join,
	"when":     when,
}

// shortDigest is a digest's algorithm and first 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// when is an RFC 3339 time as a date and time in UTC, with how far off it is.
func when(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	d := time.Until(t).Round(time.Hour)
	rel := "in " + days(d)
	if d < 0 {
		rel = days(-d) + " ago"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + rel + ")"
}

func days(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%d hours", int(d/time.Hour))
}
