package signed

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/verify"
)

func TestParseUpstreamReadsNamesAsDockerDoes(t *testing.T) {
	for _, tc := range []struct {
		in, host, repo, ref string
	}{
		{"alpine", "docker.io", "library/alpine", "latest"},
		{"alpine:3.20", "docker.io", "library/alpine", "3.20"},
		{"bitnami/redis:7", "docker.io", "bitnami/redis", "7"},
		{"ghcr.io/acme/app:v1", "ghcr.io", "acme/app", "v1"},
		{"127.0.0.1:5000/acme/app", "127.0.0.1:5000", "acme/app", "latest"},
		{"localhost/app@sha256:" + fmt.Sprintf("%064x", 1), "localhost", "app", "sha256:" + fmt.Sprintf("%064x", 1)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParseUpstream(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != tc.host || u.Repo != tc.repo || u.Ref() != tc.ref {
				t.Errorf("got %+v, want %s %s %s", u, tc.host, tc.repo, tc.ref)
			}
		})
	}
	for _, bad := range []string{"UPPER/case", "acme/app:bad tag", "acme/app@sha256:short"} {
		if _, err := ParseUpstream(bad); err == nil {
			t.Errorf("ParseUpstream(%q) accepted it", bad)
		}
	}
}

func TestCodeGivesEachFailureItsExitCode(t *testing.T) {
	verr := func(kind error) error { return &verify.Error{Kind: kind, Target: "acme/app:v1"} }
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"no error is verified", nil, CodeVerified},
		{"a target no role vouches for is not signed", verr(verify.ErrNotSigned), CodeNotSigned},
		{"a blob of other bytes is a mismatch", fmt.Errorf("pull: %w", &oci.MismatchError{What: "blob", Reason: "x"}), CodeMismatch},
		{"expired metadata", verr(verify.ErrExpired), CodeExpired},
		{"trustd down", verr(verify.ErrUnreachable), CodeUnreachable},
		{"a registry that refuses connections", &net.OpError{Op: "dial", Err: errors.New("refused")}, CodeUnreachable},
		{"a registry answering 503", &oci.HTTPError{Status: 503}, CodeUnreachable},
		{"a rollback is another error", verr(verify.ErrInvalidMetadata), CodeOther},
		{"a registry answering 403", &oci.HTTPError{Status: 403}, CodeOther},
		{"a registry refusing a pull for its policy", &oci.HTTPError{Status: 403, Code: "DENIED", Message: "the pull policy for acme/app requires 2 distinct delegated signers of the image: 1 signed it"}, CodePolicy},
		{"a policy not met", &Error{Code: CodePolicy, Err: errors.New("the pull policy for acme/app requires ...")}, CodePolicy},
		{"a signature artifact the registry refused is another error", &SignatureError{Err: &oci.HTTPError{Status: 403}}, CodeOther},
		{"a signature artifact the registry could not check is unreachable", &SignatureError{Err: &oci.HTTPError{Status: 503}}, CodeUnreachable},
		{"a push that cannot reach trustd is unreachable", fmt.Errorf("publish: cannot reach trustd at x: %w", &url.Error{Op: "Post", Err: errors.New("refused")}), CodeUnreachable},
		{"a missing local file is not the network", fmt.Errorf("push: %w", &fs.PathError{Op: "stat", Path: "./app", Err: syscall.ENOENT}), CodeOther},
		{"a layout path that is a file is not the network", &fs.PathError{Op: "mkdir", Path: "./out", Err: syscall.ENOTDIR}, CodeOther},
		{"a connection refused is the network", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, CodeUnreachable},
		{"anything else", errors.New("no pinned root"), CodeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.want {
				t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
