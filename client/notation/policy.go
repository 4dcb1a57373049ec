package notation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// A trust policy is notation's trustpolicy.json: statements, each naming the
// registry scopes (host/repo) it applies to, the trust stores whose
// certificates it trusts, and the identities it accepts among them.

// StatementPrefix starts the name of every trust policy statement trustctl
// writes: "signet:<host>/<repo>".
const StatementPrefix = "signet:"

// policyVersion is the trust policy document version notation v1.3 reads.
const policyVersion = "1.0"

// Repository is what the trust policy says of one repository: its registry
// scope (host/repo, as notation names it) and the certificates of the keys
// delegated for it now.
type Repository struct {
	Scope        string
	Certificates []Trusted
}

// statement is one trust policy statement, in notation's field names.
type statement struct {
	Name                  string                `json:"name"`
	RegistryScopes        []string              `json:"registryScopes"`
	SignatureVerification signatureVerification `json:"signatureVerification"`
	TrustStores           []string              `json:"trustStores"`
	TrustedIdentities     []string              `json:"trustedIdentities"`
}

type signatureVerification struct {
	Level string `json:"level"`
}

// PolicyPath is the trust policy file in notation's configuration directory.
func PolicyPath(configDir string) string { return filepath.Join(configDir, "trustpolicy.json") }

// WriteTrustPolicy writes, in notation's configuration directory configDir,
// one trust store per repository holding exactly the certificates given (so a
// key revoked since the last write is trusted no more), and a trust policy
// statement per repository: strict verification, that store, any identity
// (the store holds only delegated keys, and a certificate's subject is the
// signer's to choose). Statements trustctl wrote for other repositories, and
// statements of the user's own, are kept; a statement of the user's own for
// one of the same scopes is an error, since notation allows one per scope.
func WriteTrustPolicy(configDir string, repos []Repository) error {
	if len(repos) == 0 {
		return errors.New("no repository to write a trust policy for")
	}
	var doc struct {
		Version       string            `json:"version"`
		TrustPolicies []json.RawMessage `json:"trustPolicies"`
	}
	b, err := os.ReadFile(PolicyPath(configDir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		doc.Version = policyVersion
	case err != nil:
		return err
	default:
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("%s: %w (move it away to write a new one)", PolicyPath(configDir), err)
		}
		if doc.Version != policyVersion {
			return fmt.Errorf("%s is a version %q trust policy; trustctl writes version %q", PolicyPath(configDir), doc.Version, policyVersion)
		}
	}
	ours := map[string]bool{}
	for _, r := range repos {
		if !strings.Contains(r.Scope, "/") || strings.ContainsAny(r.Scope, "@*") {
			return fmt.Errorf("registry scope %q: want HOST/REPO", r.Scope)
		}
		ours[r.Scope] = true
	}
	kept := doc.TrustPolicies[:0]
	for _, raw := range doc.TrustPolicies {
		var s statement
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%s: a statement: %w", PolicyPath(configDir), err)
		}
		mine := strings.HasPrefix(s.Name, StatementPrefix)
		for _, scope := range s.RegistryScopes {
			if ours[scope] && !mine {
				return fmt.Errorf("%s: statement %q already covers %s, and notation allows one statement per scope: remove it (or its scope) to let trustctl write Signet's", PolicyPath(configDir), s.Name, scope)
			}
		}
		if mine && slices.ContainsFunc(s.RegistryScopes, func(sc string) bool { return ours[sc] }) {
			continue
		}
		kept = append(kept, raw)
	}
	doc.TrustPolicies = kept
	for _, r := range repos {
		name := StoreName(r.Scope)
		if err := writeStore(configDir, name, r.Certificates); err != nil {
			return fmt.Errorf("trust store %s: %w", name, err)
		}
		raw, err := json.Marshal(statement{
			Name:                  StatementPrefix + r.Scope,
			RegistryScopes:        []string{r.Scope},
			SignatureVerification: signatureVerification{Level: "strict"},
			TrustStores:           []string{"ca:" + name},
			TrustedIdentities:     []string{"*"},
		})
		if err != nil {
			return err
		}
		doc.TrustPolicies = append(doc.TrustPolicies, raw)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(PolicyPath(configDir), append(out, '\n'), 0o644)
}

// ConfigDir is notation's configuration directory, as notation finds it:
// $NOTATION_CONFIG, else $XDG_CONFIG_HOME/notation (os.UserConfigDir).
func ConfigDir() (string, error) {
	if d := os.Getenv("NOTATION_CONFIG"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("notation's configuration directory: %w (set NOTATION_CONFIG)", err)
	}
	return filepath.Join(d, "notation"), nil
}
