// Package reference parses and validates the names in the OCI Distribution API:
// repository names, tags and digests, and matches repository names against the
// patterns grants and filters are written in (MatchPattern). The registry, the
// token service, the audit log and the trust graph all use it, so a name means the
// same thing everywhere.
package reference

import (
	_ "crypto/sha256" // registers sha256 with go-digest
	_ "crypto/sha512" // registers sha512 with go-digest
	"errors"
	"fmt"
	"regexp"

	"github.com/opencontainers/go-digest"
)

// Errors, matched with errors.Is.
var (
	ErrNameInvalid   = errors.New("invalid repository name")
	ErrTagInvalid    = errors.New("invalid tag")
	ErrDigestInvalid = errors.New("invalid digest")
)

// MaxNameLength is the longest repository name accepted, as in the reference
// registry, so that a name plus a registry host fits the common 255-byte limit.
const MaxNameLength = 255

var (
	// A repository name per the OCI distribution spec: path components of lower-case
	// alphanumerics separated by ".", "_", "__" or runs of "-".
	nameRegexp = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRegexp  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidateName returns an ErrNameInvalid error unless name is a valid repository name.
func ValidateName(name string) error {
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: %d characters, the limit is %d", ErrNameInvalid, len(name), MaxNameLength)
	}
	if !nameRegexp.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrNameInvalid, name)
	}
	return nil
}

// ValidTag reports whether tag is a valid tag.
func ValidTag(tag string) bool { return tagRegexp.MatchString(tag) }

// ParseDigest parses a digest of a supported algorithm (sha256 or sha512).
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrDigestInvalid, s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", fmt.Errorf("%w: %q: algorithm %s is not supported (sha256, sha512)", ErrDigestInvalid, s, d.Algorithm())
}
