package signer

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// SignDSSE signs payload of payloadType with key in a DSSE envelope, as `cosign
// attest --key` does (one signature, its key ID empty), by the key's one scheme
// (schemeSigner: the same as for TUF metadata and cosign signatures), and
// returns the envelope's JSON.
func SignDSSE(key crypto.Signer, payloadType string, payload []byte) ([]byte, error) {
	alg, err := algorithmOf(key.Public())
	if err != nil {
		return nil, err
	}
	s := schemeSigner(key, alg)
	if s == nil {
		return nil, fmt.Errorf("%w %q for DSSE", ErrUnsupportedAlgorithm, alg)
	}
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

// dsseSigner is a DSSE signer over a scheme signer; cosign leaves the key ID
// empty.
type dsseSigner struct{ s *cryptoSigner }

func (d dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return d.s.SignMessage(bytes.NewReader(data))
}

func (dsseSigner) KeyID() (string, error) { return "", nil }
