package agent

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/signer"
)

// Client talks to an agent over one connection, one request at a time.
type Client struct {
	path string
	mu   sync.Mutex
	conn net.Conn
}

// Dial connects to the agent at path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no signing agent at %s (%s): %w: start one (eval \"$(trustctl agent start)\") or unset %s", path, SocketEnv, err, SocketEnv)
	}
	return &Client{path: path, conn: c}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// do sends one request and reads its answer; a failed answer is an error,
// ErrNotHeld for CodeNotHeld.
func (c *Client) do(req Request) (*Response, error) {
	req.V = Version
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := writeFrame(c.conn, req); err != nil {
		return nil, fmt.Errorf("signing agent at %s: %w", c.path, err)
	}
	var res Response
	if err := readFrame(c.conn, &res); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("it closed the connection")
		}
		return nil, fmt.Errorf("signing agent at %s: %w", c.path, err)
	}
	switch {
	case res.Code == CodeNotHeld:
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, res.Error)
	case res.Error != "":
		return nil, fmt.Errorf("signing agent at %s: %s", c.path, res.Error)
	}
	return &res, nil
}

// Add has the agent unlock the named key of its key store with passphrase.
func (c *Client) Add(name string, passphrase []byte) (*KeyInfo, error) {
	res, err := c.do(Request{Op: OpAdd, Key: name, Passphrase: passphrase})
	if err != nil {
		return nil, err
	}
	if len(res.Keys) != 1 {
		return nil, fmt.Errorf("signing agent at %s: no key in its answer", c.path)
	}
	return &res.Keys[0], nil
}

// List returns the keys the agent holds.
func (c *Client) List() ([]KeyInfo, error) {
	res, err := c.do(Request{Op: OpList})
	if err != nil {
		return nil, err
	}
	return res.Keys, nil
}

// Lock has the agent forget every key.
func (c *Client) Lock() error {
	_, err := c.do(Request{Op: OpLock})
	return err
}

// Key returns a key the agent holds, whose Signer asks the agent; ErrNotHeld
// when it does not hold it.
func (c *Client) Key(name string) (*signer.Key, error) {
	res, err := c.do(Request{Op: OpPublic, Key: name})
	if err != nil {
		return nil, err
	}
	if len(res.Keys) != 1 {
		return nil, fmt.Errorf("signing agent at %s: no key in its answer", c.path)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(res.Keys[0].PublicPEM)
	if err != nil {
		return nil, fmt.Errorf("signing agent at %s: key %q: %w", c.path, name, err)
	}
	k, err := signer.KeyFromSigner(name, &remote{c: c, name: name, pub: pub})
	if err != nil {
		return nil, err
	}
	k.Development = res.Keys[0].Development
	return k, nil
}

// remote is a crypto.Signer whose private key the agent holds.
type remote struct {
	c    *Client
	name string
	pub  crypto.PublicKey
	mu   sync.Mutex
	what string
}

func (r *remote) Public() crypto.PublicKey { return r.pub }

func (r *remote) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	req := Request{Op: OpSign, Key: r.name, Digest: digest}
	if opts != nil {
		req.Hash = uint(opts.HashFunc())
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		salt := pss.SaltLength
		req.PSSSaltLength = &salt
	}
	r.mu.Lock()
	req.For = r.what
	r.mu.Unlock()
	res, err := r.c.do(req)
	if err != nil {
		return nil, err
	}
	return res.Signature, nil
}

// SigningFor tells the agent what k's next signatures are for (a role, an
// artifact), for its log. It does nothing for a key the agent does not hold.
func SigningFor(k *signer.Key, what string) {
	if r, ok := k.Signer.(*remote); ok {
		r.mu.Lock()
		r.what = what
		r.mu.Unlock()
	}
}

// KeyStore is a key store with the agent in front: Load returns the agent's
// key when it holds it, else loads from the store as before (asking for the
// passphrase); everything else is the store's.
type KeyStore struct {
	signer.KeyStore
	path string

	mu     sync.Mutex
	client *Client
}

// Wrap puts the agent named by $SIGNET_AGENT_SOCK in front of ks, or returns
// ks when the variable is unset or empty.
func Wrap(ks signer.KeyStore) signer.KeyStore {
	path := os.Getenv(SocketEnv)
	if path == "" {
		return ks
	}
	return &KeyStore{KeyStore: ks, path: path}
}

// Load returns the agent's key name, or the store's when the agent does not
// hold it. An agent that cannot be reached is an error: the variable says
// one runs.
func (s *KeyStore) Load(ctx context.Context, name string) (*signer.Key, error) {
	if err := signer.ValidateName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.client == nil {
		c, err := Dial(s.path)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.client = c
	}
	c := s.client
	s.mu.Unlock()
	k, err := c.Key(name)
	if errors.Is(err, ErrNotHeld) {
		return s.KeyStore.Load(ctx, name)
	}
	return k, err
}
