package trust

import (
	"fmt"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// keyFromPEM turns a PEM public key into TUF's form and its key ID.
func keyFromPEM(what string, pemBytes []byte) (*metadata.Key, string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: not a PEM public key: %w", what, err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", what, err)
	}
	id, err := k.ID()
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", what, err)
	}
	return k, id, nil
}
