package main

import (
	"errors"

	"github.com/signet-oss/signet/client/signed"
)

// exitError carries the exit code a command chose for its failure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// codeInterrupted is the exit status of a command stopped by Ctrl-C (SIGINT),
// as shells report a process a signal ended: 128 + the signal's number.
// SIGTERM exits 143 the same way.
const (
	codeInterrupted = 130
	codeTerminated  = 143
)

// exitCode is the process's exit status for err: the code a command chose
// (verify, pull, push...), else 13 when trustd or the registry could not be
// reached, else 1. A missing local file or a bad argument is never 13: a
// script retries 13 only.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if signed.Code(err) == signed.CodeUnreachable {
		return signed.CodeUnreachable
	}
	return signed.CodeOther
}

// exitCodesHelp documents the exit codes in the help of verify, pull and
// policy test. It is README.md's table of exit codes ("Exit codes"), in the
// words a terminal shows; TestExitCodesAgreeWithREADME keeps them the same.
const exitCodesHelp = `Exit codes (also "code" in --output json):
` + exitCodeTable + `
A signature or attestation listed as not verifying is reported ("referrers" in
--output json) and does not change the exit code by itself: the code is the
image's. With a pull policy, the verified ones are what it counts ("policy" in
--output json): then what is attached decides between 0 and 14.

For tests only: SIGNET_VERIFY_NOW=<RFC 3339 time> sets the clock that expiry is
checked against.`

// exitCodeTable is every code trustctl exits with, for every command: one
// line per code, then its explanation, indented.
const exitCodeTable = `    0  success (verify, pull: verified)
    1  anything else: bad arguments or usage, a local file that is missing or
       not what it should be, no login, no pinned root (trustctl trust add), a
       refusal (not delegated, no such org, no permission), trust metadata that
       fails verification (a rollback, a bad signature)
   10  not signed (verify, pull): no key delegated for the repository signed
       this tag or digest (never signed, signed by an undelegated or revoked
       key, or signed only under another repository name)
   11  content mismatch (verify, pull, copy): the registry (copy: the source)
       serves other bytes than the signed ones (a manifest or blob of another
       digest or length, an index child outside the signed closure, or signed
       content the registry no longer has)
   12  expired metadata (verify, pull, push, copy, sign): trust metadata has
       expired (trustd stopped re-signing, or this machine's clock is wrong)
   13  unreachable (every command): trustd or the registry could not be
       reached, or answered with a server error; run it again when they are
       back (a push skips the blobs already uploaded)
   14  policy not met (verify, pull, policy test): signed, but the org's pull
       policy for the repository is not met (an enforced one; the message
       names what is missing), or the org's policies cannot be read; pull
       writes nothing
  130  interrupted (Ctrl-C); 143 when stopped by SIGTERM
`
