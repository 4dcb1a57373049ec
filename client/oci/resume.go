package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// An upload interrupted by its process ending (Ctrl-C, a lost terminal) is
// resumed by the next process that uploads the same blob to the same
// repository: upload remembers each session's URL until the blob is committed,
// and a later upload asks that session how much it holds (GET, Range) and
// sends only the rest. The registry keeps the bytes of a PATCH that broke off.

// UploadSessions remembers upload sessions by key (the registry, repository and
// digest). Its methods never fail: a session forgotten is only sent again.
type UploadSessions interface {
	Load(key string) string
	Save(key, location string)
	Forget(key string)
}

// SessionDir keeps upload sessions as small files in a directory (trustctl's
// $SIGNET_HOME/uploads), one per key, named by the key's sha256.
type SessionDir string

type savedSession struct {
	Key      string    `json:"key"`
	Location string    `json:"location"`
	Saved    time.Time `json:"saved"`
}

// sessionTTL bounds how old a remembered session may be: registries drop
// sessions left idle (Signet after uploadTTL, a day by default).
const sessionTTL = 7 * 24 * time.Hour

func (d SessionDir) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(string(d), hex.EncodeToString(sum[:])+".json")
}

// Load returns the session remembered for key, or "".
func (d SessionDir) Load(key string) string {
	b, err := os.ReadFile(d.path(key))
	if err != nil {
		return ""
	}
	var s savedSession
	if json.Unmarshal(b, &s) != nil || s.Key != key || time.Since(s.Saved) > sessionTTL {
		return ""
	}
	return s.Location
}

// Save remembers location as key's session.
func (d SessionDir) Save(key, location string) {
	if os.MkdirAll(string(d), 0o700) != nil {
		return
	}
	b, err := json.Marshal(savedSession{Key: key, Location: location, Saved: time.Now().UTC()})
	if err == nil {
		atomicfile.Write(d.path(key), b, 0o600)
	}
}

// Forget drops key's session.
func (d SessionDir) Forget(key string) { os.Remove(d.path(key)) }
