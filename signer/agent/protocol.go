// Package agent is Signet's signing agent, as ssh-agent is ssh's: a process that
// unlocks keys of a signer.KeyStore once and signs with them on request over a
// Unix socket, so that a publisher or a CI job that signs many times pays the
// key's unlock (scrypt, deliberately slow) once.
//
// The trust boundary is the socket. Its directory is 0700 and the socket 0600,
// and the agent also checks every connection's peer credentials (SO_PEERCRED):
// a process of another user is refused and logged, whatever the file modes.
// The agent keeps keys in memory only: it locks its memory (mlockall) where
// RLIMIT_MEMLOCK allows, marks itself not dumpable (no core file, no ptrace by
// the same user), never writes a key out, and forgets every key after an idle
// timeout or on Lock. Over the socket go only public keys, digests and
// signatures: never private material. It logs every signature it makes: key,
// what it was for, digest.
//
// KeyStore puts the agent in front of a key store: Load returns keys whose
// crypto.Signer asks the agent, so every signing path (TUF roles, cosign
// signatures, DSSE attestations, notation) uses it unchanged.
package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SocketEnv names the environment variable that holds the agent's socket path;
// every signing command uses the agent when it is set.
const SocketEnv = "SIGNET_AGENT_SOCK"

// Version is the protocol's version: a frame of another version is refused.
const Version = 1

// maxFrame bounds a frame: requests carry a name, a digest and a passphrase,
// answers a signature or a few public keys.
const maxFrame = 1 << 20

// The operations.
const (
	OpAdd    = "add"    // unlock Key with Passphrase
	OpPublic = "public" // the public key of Key
	OpSign   = "sign"   // sign Digest with Key
	OpList   = "list"   // the keys held
	OpLock   = "lock"   // forget every key
)

// Request is one frame from a client.
type Request struct {
	V  int    `json:"v"`
	Op string `json:"op"`
	// Key names a key of the agent's key store.
	Key string `json:"key,omitempty"`
	// Passphrase unlocks Key (OpAdd); empty for a development key.
	Passphrase []byte `json:"passphrase,omitempty"`
	// Digest is what crypto.Signer.Sign is given: a hash, or for pure
	// Ed25519 the message itself.
	Digest []byte `json:"digest,omitempty"`
	// Hash is the crypto.Hash of the digest (0 for pure Ed25519).
	Hash uint `json:"hash,omitempty"`
	// PSSSaltLength is set for RSA-PSS: rsa.PSSOptions.SaltLength.
	PSSSaltLength *int `json:"pssSaltLength,omitempty"`
	// For says what the signature is for (a role, an artifact), for the log.
	For string `json:"for,omitempty"`
}

// KeyInfo is what the agent says of a key it holds.
type KeyInfo struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Algorithm   string `json:"algorithm"`
	PublicPEM   []byte `json:"publicPEM"`
	Development bool   `json:"development,omitempty"`
}

// Response is one frame from the agent.
type Response struct {
	V int `json:"v"`
	// Error says why the request failed; Code names the failures clients act
	// on (CodeLocked, CodeNotHeld).
	Error     string    `json:"error,omitempty"`
	Code      string    `json:"code,omitempty"`
	Signature []byte    `json:"signature,omitempty"`
	Keys      []KeyInfo `json:"keys,omitempty"`
}

// Codes of a failed Response.
const (
	// CodeNotHeld: the agent does not hold the key (never added, or it locked
	// since: after an idle timeout or a lock it holds none).
	CodeNotHeld = "not-held"
	// CodeRefused: the connection's peer is not the agent's user.
	CodeRefused = "refused"
)

// writeFrame writes v as a frame: a 4-byte big-endian length, then JSON.
func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("agent: a frame of %d bytes, over %d", len(b), maxFrame)
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one frame into v.
func readFrame(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("agent: a frame of %d bytes, over %d", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("agent: unreadable frame: %w", err)
	}
	return nil
}

// ErrNotHeld: the agent does not hold the key asked for.
var ErrNotHeld = errors.New("the signing agent does not hold the key")
