package agent

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/signet-oss/signet/signer"
)

// DefaultIdleTimeout is how long the agent keeps its keys without signing.
const DefaultIdleTimeout = 15 * time.Minute

// Config configures an Agent.
type Config struct {
	// Socket is the socket's path. Its directory is created 0700 if missing,
	// and must otherwise be the agent's user's alone (mode 0700).
	Socket string
	// Open opens the key store keys are unlocked from, with the passphrase an
	// add gave (signer.NewFileKeyStore of the user's key directory).
	Open func(passphrase []byte) signer.KeyStore
	// IdleTimeout forgets every key after this long without a signature or an
	// add (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Log receives a line per signature, add, lock and refused connection.
	Log *slog.Logger
}

// Agent holds unlocked keys and signs with them for its user.
type Agent struct {
	cfg Config
	ln  *net.UnixListener
	uid int
	// madeDir is the socket's directory when the agent created it (removed
	// with the socket), else "".
	madeDir string
	// deathPipe is held open for the process's life (RemoveOnDeath).
	deathPipe *os.File

	mu   sync.Mutex
	keys map[string]*signer.Key
	idle *time.Timer
}

// Listen creates the socket (0600, in a 0700 directory) and returns the agent
// that Serve runs. A socket left by an agent that died is replaced; one an
// agent still answers on is not.
func Listen(cfg Config) (*Agent, error) {
	if cfg.Open == nil {
		return nil, errors.New("agent: no key store to unlock keys from")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, uid: os.Getuid(), keys: map[string]*signer.Key{}}
	dir := filepath.Dir(cfg.Socket)
	if err := os.Mkdir(dir, 0o700); err == nil {
		a.madeDir = dir
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("agent: creating the socket directory: %w", err)
	}
	if err := ownDir(dir, a.uid); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", cfg.Socket); err == nil {
		c.Close()
		return nil, fmt.Errorf("agent: an agent already answers on %s", cfg.Socket)
	}
	os.Remove(cfg.Socket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.ln = ln
	return a, nil
}

// Socket is the path clients dial.
func (a *Agent) Socket() string { return a.cfg.Socket }

// Serve answers connections until ctx ends, then forgets every key and
// removes the socket (and its directory, if the agent made it).
func (a *Agent) Serve(ctx context.Context) error {
	var (
		wg    sync.WaitGroup
		cmu   sync.Mutex
		conns = map[*net.UnixConn]bool{}
	)
	stop := context.AfterFunc(ctx, func() {
		a.ln.Close()
		cmu.Lock()
		for c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	defer stop()
	defer a.cleanup()
	defer wg.Wait()
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("agent: %w", err)
		}
		cmu.Lock()
		if ctx.Err() != nil {
			c.Close()
		}
		conns[c] = true
		cmu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serveConn(ctx, c)
			cmu.Lock()
			delete(conns, c)
			cmu.Unlock()
		}()
	}
}

func (a *Agent) cleanup() {
	a.Lock("the agent stopped")
	a.ln.Close()
	if a.madeDir != "" {
		os.Remove(a.madeDir)
	}
}

// serveConn answers one connection's requests, after checking its peer.
func (a *Agent) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	uid, pid, err := peerCred(c)
	if err == nil && uid != a.uid {
		err = fmt.Errorf("peer uid %d is not the agent's uid %d", uid, a.uid)
	}
	if err != nil {
		a.cfg.Log.Warn("signing agent refused a connection", "uid", uid, "pid", pid, "err", err)
		// Read the first request, so the refusal is what the peer reads
		// rather than a broken pipe, but answer nothing else.
		c.SetReadDeadline(time.Now().Add(time.Second))
		var req Request
		readFrame(c, &req)
		writeFrame(c, Response{V: Version, Code: CodeRefused, Error: "refused: the signing agent serves its own user only"})
		return
	}
	for {
		var req Request
		if err := readFrame(c, &req); err != nil {
			return
		}
		if err := writeFrame(c, a.answer(ctx, &req)); err != nil {
			return
		}
		clear(req.Passphrase)
	}
}

func fail(code string, err error) Response {
	return Response{V: Version, Code: code, Error: err.Error()}
}

// answer handles one request.
func (a *Agent) answer(ctx context.Context, req *Request) Response {
	if req.V != Version {
		return fail("", fmt.Errorf("protocol version %d, the agent speaks %d", req.V, Version))
	}
	switch req.Op {
	case OpAdd:
		return a.add(ctx, req)
	case OpPublic, OpList:
		return a.public(req)
	case OpSign:
		return a.sign(req)
	case OpLock:
		a.Lock("asked to lock")
		return Response{V: Version}
	}
	return fail("", fmt.Errorf("unknown operation %q", req.Op))
}

// add unlocks a key of the store with the passphrase given.
func (a *Agent) add(ctx context.Context, req *Request) Response {
	pass := append([]byte{}, req.Passphrase...)
	defer clear(pass)
	k, err := a.cfg.Open(pass).Load(ctx, req.Key)
	if err != nil {
		return fail("", err)
	}
	a.mu.Lock()
	a.keys[req.Key] = k
	a.touch()
	a.mu.Unlock()
	a.cfg.Log.Info("signing agent unlocked a key", "key", req.Key, "id", k.ID)
	return Response{V: Version, Keys: []KeyInfo{info(k)}}
}

func info(k *signer.Key) KeyInfo {
	return KeyInfo{Name: k.Name, ID: k.ID, Algorithm: k.Algorithm, PublicPEM: k.PublicPEM, Development: k.Development}
}

// public answers the public key of one key held, or of all.
func (a *Agent) public(req *Request) Response {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Op == OpPublic {
		k := a.keys[req.Key]
		if k == nil {
			return fail(CodeNotHeld, fmt.Errorf("%w %q", ErrNotHeld, req.Key))
		}
		return Response{V: Version, Keys: []KeyInfo{info(k)}}
	}
	res := Response{V: Version, Keys: []KeyInfo{}}
	for _, k := range a.keys {
		res.Keys = append(res.Keys, info(k))
	}
	sort.Slice(res.Keys, func(i, j int) bool { return res.Keys[i].Name < res.Keys[j].Name })
	return res
}

// sign signs a digest with a key held, and logs it.
func (a *Agent) sign(req *Request) Response {
	a.mu.Lock()
	k := a.keys[req.Key]
	if k != nil {
		a.touch()
	}
	a.mu.Unlock()
	if k == nil {
		return fail(CodeNotHeld, fmt.Errorf("%w %q", ErrNotHeld, req.Key))
	}
	h := crypto.Hash(req.Hash)
	if h != 0 && !h.Available() {
		return fail("", fmt.Errorf("hash %d is not one the agent signs with", req.Hash))
	}
	var opts crypto.SignerOpts = h
	if req.PSSSaltLength != nil {
		opts = &rsa.PSSOptions{SaltLength: *req.PSSSaltLength, Hash: h}
	}
	sig, err := k.Signer.Sign(rand.Reader, req.Digest, opts)
	if err != nil {
		return fail("", fmt.Errorf("signing with %q: %w", req.Key, err))
	}
	a.cfg.Log.Info("signing agent signed", "key", req.Key, "id", k.ID, "for", req.For, "digest", hex.EncodeToString(req.Digest))
	return Response{V: Version, Signature: sig}
}

// touch restarts the idle timer (a.mu held).
func (a *Agent) touch() {
	if a.idle != nil {
		a.idle.Stop()
	}
	a.idle = time.AfterFunc(a.cfg.IdleTimeout, func() { a.Lock(fmt.Sprintf("idle for %s", a.cfg.IdleTimeout)) })
}

// Lock forgets every key: the next signature needs an add again.
func (a *Agent) Lock(why string) {
	a.mu.Lock()
	n := len(a.keys)
	a.keys = map[string]*signer.Key{}
	if a.idle != nil {
		a.idle.Stop()
		a.idle = nil
	}
	a.mu.Unlock()
	// A token key is a logged-in session, not a key: forgetting it means
	// logging out, or a later add would sign without the PIN.
	if err := signer.CloseTokens(); err != nil {
		a.cfg.Log.Warn("signing agent could not log out of a token", "err", err)
	}
	if n > 0 {
		a.cfg.Log.Info("signing agent locked", "reason", why, "forgotten", n)
	}
}

// ownDir checks that dir is a directory of uid's, with no access for others.
func ownDir(dir string, uid int) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("agent: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("agent: %s is open to other users (mode %v): the socket's directory must be 0700", dir, fi.Mode().Perm())
	}
	if owner, ok := fileOwner(fi); ok && owner != uid {
		return fmt.Errorf("agent: %s belongs to uid %d, not %d", dir, owner, uid)
	}
	return nil
}
