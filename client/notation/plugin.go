package notation

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/notaryproject/notation-plugin-framework-go/plugin"
	"golang.org/x/term"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// The notation plugin: notation runs `notation-signet <command>` with the
// request as JSON on stdin and reads the answer from stdout, or an error
// ({"errorCode", "errorMessage"}) from stderr with a non-zero exit (notation's
// plugin specification, contract version 1.0). It has the capability
// SIGNATURE_GENERATOR.RAW: notation builds the envelope (JWS or COSE) and asks
// the plugin only for the raw signature over the bytes to sign, with the
// certificate chain to put in it.

// PluginName is the plugin's name: notation looks for the executable
// "notation-" + PluginName, and users name it with `--plugin signet`.
const PluginName = "signet"

// PluginVersion is the plugin's version, as get-plugin-metadata reports it
// (notation compares versions when a plugin is installed again).
const PluginVersion = "1.0.0"

// PassphraseFileConfig is the plugin configuration key naming a file that
// holds the key's passphrase: `notation sign --plugin-config
// passphrase-file=PATH`, or `notation key add --plugin-config ...` once.
const PassphraseFileConfig = "passphrase-file"

// Plugin answers notation's plugin commands with the keys of one Signet key
// store. The key is named by notation's key ID (`notation key add --id NAME`):
// the Signet key's name.
type Plugin struct {
	// KeyDir finds the key store's directory ($SIGNET_HOME/keys); certificates
	// are kept there too (CertificatePath). It is asked only by the commands
	// that use a key, so get-plugin-metadata answers anywhere.
	KeyDir func() (string, error)
	// TTY is the terminal the passphrase is asked on when neither the plugin
	// configuration nor SIGNET_PASSPHRASE gives it: stdin carries notation's
	// request. Normally /dev/tty.
	TTY string
	// Now is the clock certificates are made and checked with; nil means
	// time.Now.
	Now func() time.Time
}

var _ plugin.Plugin = (*Plugin)(nil)

// GetMetadata answers get-plugin-metadata.
func (p *Plugin) GetMetadata(context.Context, *plugin.GetMetadataRequest) (*plugin.GetMetadataResponse, error) {
	return &plugin.GetMetadataResponse{
		Name:                      PluginName,
		Description:               "Signs with the keys of Signet's key store ($SIGNET_HOME/keys), each with its own certificate",
		Version:                   PluginVersion,
		URL:                       "https://github.com/signet-oss/signet",
		SupportedContractVersions: []string{plugin.ContractVersion},
		Capabilities:              []plugin.Capability{plugin.CapabilitySignatureGenerator},
	}, nil
}

// DescribeKey answers describe-key: the key spec of the named key, read
// without its passphrase. Only ECDSA P-256 keys (EC-256) can sign for
// notation; any other is a validation error saying why.
func (p *Plugin) DescribeKey(ctx context.Context, req *plugin.DescribeKeyRequest) (*plugin.DescribeKeyResponse, error) {
	if err := contract(req.ContractVersion); err != nil {
		return nil, err
	}
	ks, dir, err := p.store(req.KeyID, req.PluginConfig)
	if err != nil {
		return nil, plugin.NewGenericError(err.Error())
	}
	info, err := ks.Public(ctx, req.KeyID)
	if err != nil {
		return nil, pluginError(dir, req.KeyID, err)
	}
	if err := CheckKey(info); err != nil {
		return nil, pluginError(dir, req.KeyID, err)
	}
	return &plugin.DescribeKeyResponse{KeyID: req.KeyID, KeySpec: plugin.KeySpecEC256}, nil
}

// GenerateSignature answers generate-signature: it loads the named key
// (asking for its passphrase), signs SHA-256 of the payload with it, and
// returns the signature as notation's envelopes hold an ECDSA signature (R || S,
// each 32 bytes, as JWS and COSE write it), the signing algorithm
// ECDSA-SHA-256, and the chain [the key's certificate].
func (p *Plugin) GenerateSignature(ctx context.Context, req *plugin.GenerateSignatureRequest) (*plugin.GenerateSignatureResponse, error) {
	if err := contract(req.ContractVersion); err != nil {
		return nil, err
	}
	if req.KeySpec != plugin.KeySpecEC256 || req.Hash != plugin.HashAlgorithmSHA256 {
		return nil, plugin.NewValidationErrorf("key %q signs as %s with %s, not %s with %s", req.KeyID, plugin.KeySpecEC256, plugin.HashAlgorithmSHA256, req.KeySpec, req.Hash)
	}
	ks, dir, err := p.store(req.KeyID, req.PluginConfig)
	if err != nil {
		return nil, plugin.NewGenericError(err.Error())
	}
	key, err := ks.Load(ctx, req.KeyID)
	if err != nil {
		return nil, pluginError(dir, req.KeyID, err)
	}
	cert, err := Certificate(ctx, dir, key, p.now(), false)
	if err != nil {
		return nil, pluginError(dir, req.KeyID, err)
	}
	h := sha256.Sum256(req.Payload)
	agent.SigningFor(key, "notation signature")
	der, err := key.Signer.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, plugin.NewGenericErrorf("signing with key %q: %v", req.KeyID, err)
	}
	sig, err := rawECDSA(der, 32)
	if err != nil {
		return nil, plugin.NewGenericErrorf("signing with key %q: %v", req.KeyID, err)
	}
	return &plugin.GenerateSignatureResponse{
		KeyID:            req.KeyID,
		Signature:        sig,
		SigningAlgorithm: plugin.SignatureAlgorithmECDSA_SHA256,
		CertificateChain: [][]byte{cert.Raw},
	}, nil
}

// GenerateEnvelope is not a capability of this plugin: notation builds the
// envelope itself.
func (p *Plugin) GenerateEnvelope(context.Context, *plugin.GenerateEnvelopeRequest) (*plugin.GenerateEnvelopeResponse, error) {
	return nil, plugin.NewUnsupportedError(string(plugin.CommandGenerateEnvelope))
}

// VerifySignature is not a capability of this plugin: notation verifies
// against the trust store and policy trustctl writes.
func (p *Plugin) VerifySignature(context.Context, *plugin.VerifySignatureRequest) (*plugin.VerifySignatureResponse, error) {
	return nil, plugin.NewUnsupportedError(string(plugin.CommandVerifySignature))
}

func contract(v string) error {
	if v != plugin.ContractVersion {
		return plugin.NewUnsupportedContractVersionError(v)
	}
	return nil
}

func (p *Plugin) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// store opens the key store with the passphrase source of one request, and
// returns its directory.
func (p *Plugin) store(name string, config map[string]string) (signer.KeyStore, string, error) {
	if p.KeyDir == nil {
		return nil, "", errors.New("no key store configured")
	}
	dir, err := p.KeyDir()
	if err != nil {
		return nil, "", err
	}
	// Behind the signing agent when $SIGNET_AGENT_SOCK is set: a key it
	// holds needs no passphrase.
	return agent.Wrap(signer.NewFileKeyStore(dir, func(bool) ([]byte, error) { return p.passphrase(name, config) })), dir, nil
}

// passphrase returns the key's passphrase: from the file the plugin
// configuration names (given for this signature, so it wins), else
// SIGNET_PASSPHRASE, else asked on the terminal, never on stdin, which
// carries the request.
func (p *Plugin) passphrase(name string, config map[string]string) ([]byte, error) {
	if path := config[PassphraseFileConfig]; path != "" {
		b, err := ReadPassphraseFile(path)
		if err != nil {
			return nil, fmt.Errorf("plugin config %s: %w", PassphraseFileConfig, err)
		}
		return b, nil
	}
	if v, ok := os.LookupEnv(signer.PassphraseEnv); ok {
		return []byte(v), nil
	}
	noTTY := func(err error) error {
		return fmt.Errorf("no terminal to ask for the passphrase of key %q on (%v): set %s, or pass --plugin-config %s=PATH", name, err, signer.PassphraseEnv, PassphraseFileConfig)
	}
	if p.TTY == "" {
		return nil, noTTY(errors.New("none configured"))
	}
	tty, err := os.OpenFile(p.TTY, os.O_RDWR, 0)
	if err != nil {
		return nil, noTTY(err)
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, noTTY(fmt.Errorf("%s is not a terminal", p.TTY))
	}
	fmt.Fprintf(tty, "Passphrase of Signet key %q: ", name)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	return b, nil
}

// ReadPassphraseFile reads a passphrase kept in a file: its content without
// the line ending that ends it.
func ReadPassphraseFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the passphrase file: %w", err)
	}
	return []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
}

// pluginError turns an error into the plugin specification's error: a
// validation error for a key that does not exist or that notation cannot use,
// access denied for a wrong passphrase or a token's wrong PIN, a generic error
// otherwise.
func pluginError(keyDir, name string, err error) error {
	switch {
	case errors.Is(err, signer.ErrKeyNotFound), errors.Is(err, signer.ErrInvalidName):
		return plugin.NewValidationErrorf("no Signet key %q in %s (trustctl keys list shows the keys; the key ID is the key's name): %v", name, keyDir, err)
	case errors.Is(err, ErrUnsupportedKey):
		return plugin.NewValidationError(err.Error())
	case errors.Is(err, signer.ErrWrongPassphrase), errors.Is(err, signer.ErrWrongPIN):
		return plugin.NewError(plugin.ErrorCodeAccessDenied, err.Error())
	}
	return plugin.NewGenericError(err.Error())
}

// rawECDSA turns an ASN.1 DER ECDSA signature into R || S, each size bytes.
func rawECDSA(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil {
		return nil, errors.New("not an ASN.1 ECDSA signature")
	}
	if sig.R.BitLen() > 8*size || sig.S.BitLen() > 8*size {
		return nil, errors.New("an ECDSA signature too large for the curve")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
