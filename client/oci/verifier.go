package oci

import (
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// verifyingReader passes at most size bytes of r on, hashing them, and at the
// end checks the digest and the length: a reader that ends early, runs long or
// hashes to another digest returns a *MismatchError instead of io.EOF.
type verifyingReader struct {
	r      io.Reader
	what   string
	want   digest.Digest
	size   int64
	h      hash.Hash
	n      int64
	failed error
}

// VerifyReader returns a reader of r that fails with ErrContentMismatch unless r
// holds exactly size bytes hashing to d; what names the content in errors.
// size < 0 checks the digest only.
func VerifyReader(r io.Reader, d digest.Digest, size int64, what string) io.Reader {
	if err := d.Validate(); err != nil {
		return &verifyingReader{failed: fmt.Errorf("%s: %w", what, err)}
	}
	return &verifyingReader{r: r, what: what, want: d, size: size, h: d.Algorithm().Hash()}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.failed != nil {
		return 0, v.failed
	}
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		// Read one byte past the end at most: enough to see that it runs long.
		p = p[:v.size-v.n+1]
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.h.Write(p[:n])
		v.n += int64(n)
		if v.size >= 0 && v.n > v.size {
			v.failed = &MismatchError{What: v.what, Reason: fmt.Sprintf("more than the %d bytes expected", v.size)}
			return 0, v.failed
		}
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.failed = &MismatchError{What: v.what, Reason: fmt.Sprintf("%d bytes, not the %d expected", v.n, v.size)}
			return n, v.failed
		}
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			v.failed = &MismatchError{What: v.what, Reason: "the bytes hash to " + got.String()}
			return n, v.failed
		}
	}
	return n, err
}

// checkBytes checks b against d and size (size < 0: any length).
func checkBytes(b []byte, d digest.Digest, size int64, what string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if size >= 0 && int64(len(b)) != size {
		return &MismatchError{What: what, Reason: fmt.Sprintf("%d bytes, not the %d expected", len(b), size)}
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return &MismatchError{What: what, Reason: "the bytes hash to " + got.String()}
	}
	return nil
}
