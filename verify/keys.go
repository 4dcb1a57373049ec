package verify

import (
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Keys are the publisher keys the trust graph delegates a repository to, as
// CheckCosignArtifact takes them: the TUF key records stay inside this package,
// so a caller such as the registry's gate passes keys along, and names a set of
// them, without reading TUF metadata itself. The zero Keys holds none.
type Keys struct {
	keys []*metadata.Key
}

// NewKeys makes Keys of TUF key records, as a role's delegation lists them (a
// nil record is ignored by every check).
func NewKeys(keys ...*metadata.Key) Keys {
	return Keys{keys: keys}
}

// Len is how many key records there are.
func (k Keys) Len() int { return len(k.keys) }

// IDs returns the TUF key IDs, sorted, leaving out a record go-tuf cannot name:
// two Keys with the same IDs check signatures alike.
func (k Keys) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for _, key := range k.keys {
		if key == nil {
			continue
		}
		if id, err := key.ID(); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
