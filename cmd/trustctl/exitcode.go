package main

import (
	"errors"

	"github.com/signet-oss/signet/client/signed"
)

// exitError carries the exit code of a verify or pull that failed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process's exit status for err: the code a verify or pull
// chose, else 1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return signed.CodeOther
}

// exitCodesHelp documents the codes in the help of verify and pull.
const exitCodesHelp = `Exit codes (also "code" in --output json):
   0  verified
  10  not signed: no key delegated for the repository signed this tag or digest
      (never signed, signed by an undelegated or revoked key, or signed only
      under another repository name)
  11  content mismatch: the registry serves other bytes than the signed ones
      (a manifest or blob of another digest or length, an index child outside
      the signed closure, or signed content the registry no longer has)
  12  expired metadata: trust metadata has expired (trustd stopped re-signing,
      or this machine's clock is wrong)
  13  unreachable: trustd or the registry could not be reached
  14  policy not met: signed, but the org's pull policy for the repository is
      not met (an enforced one; the message names what is missing), or the
      org's policies cannot be read; pull writes nothing
   1  anything else: bad arguments, no pinned root (run trustctl trust add),
      trust metadata that fails verification (a rollback, a bad signature)

A signature or attestation listed as not verifying is reported ("referrers" in
--output json) and does not change the exit code by itself: the code is the
image's. With a pull policy, the verified ones are what it counts ("policy" in
--output json): then what is attached decides between 0 and 14.

For tests only: SIGNET_VERIFY_NOW=<RFC 3339 time> sets the clock that expiry is
checked against.`
