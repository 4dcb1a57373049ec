package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// reloader serves the current certificate pair and client CA bundle, loading
// each again when one of its files changes.
type reloader struct {
	prefix string
	log    *slog.Logger
	now    func() time.Time
	// base is the server's config, which per-handshake configs are cloned from;
	// set only with a client CA.
	base *tls.Config

	mu       sync.Mutex
	checked  time.Time
	pair     fileSet
	cert     *tls.Certificate
	clientCA *fileSet    // nil without a client CA
	caConfig *tls.Config // base with the current client CAs
}

// getConfigForClient looks at the files (at most once a second) and returns
// the config of this handshake: nil (the server's own) without a client CA.
func (r *reloader) getConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= minReloadInterval {
		r.checked = now
		if r.pair.maybeReload(r.log, r.loadPair) {
			attrs := []any{"cert", r.pair.paths[0]}
			if leaf := r.cert.Leaf; leaf != nil {
				attrs = append(attrs, "subject", leaf.Subject.String(), "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			r.log.Info("tls certificate reloaded", attrs...)
		}
		if r.clientCA != nil && r.clientCA.maybeReload(r.log, r.loadClientCA) {
			r.log.Info("tls client CA reloaded", "clientCA", r.clientCA.paths[0])
		}
	}
	return r.caConfig, nil
}

func (r *reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}

// loadPair reads the certificate pair; r.mu is held or r is not yet shared.
func (r *reloader) loadPair() error {
	cert, err := tls.LoadX509KeyPair(r.pair.paths[0], r.pair.paths[1])
	if err != nil {
		return err
	}
	r.cert = &cert
	return nil
}

// loadClientCA reads the client CA bundle into a new per-handshake config; r.mu
// is held or r is not yet shared. A handshake resuming a session whose client
// certificate the new bundle does not verify falls back to a full handshake
// (crypto/tls checks the session's chains against the config's ClientCAs).
func (r *reloader) loadClientCA() error {
	pool, err := loadPool(r.clientCA.paths[0], x509.NewCertPool())
	if err != nil {
		return err
	}
	cfg := r.base.Clone()
	cfg.GetConfigForClient = nil
	cfg.ClientCAs = pool
	r.caConfig = cfg
	return nil
}

// fileSet is files that load together, such as a certificate and its key: a
// change to any of them (its modification time, size, or the file itself, as a
// rename puts a new one in place) makes them be loaded again.
type fileSet struct {
	what  string // what the files hold, for the log
	keys  string // the configuration keys that name them, for the log
	paths []string

	// seen are the stamps of the version last tried, whether it loaded or
	// not: a version that failed is tried again as soon as the files change,
	// whatever they change to, and is logged once.
	seen    []fileStamp
	statErr bool // the files could not be stat'ed at the last check
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	modNanos, size int64
	dev, ino       uint64
}

func (f *fileSet) stamps() ([]fileStamp, error) {
	out := make([]fileStamp, 0, len(f.paths))
	for _, p := range f.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		dev, ino := fileID(fi)
		out = append(out, fileStamp{modNanos: fi.ModTime().UnixNano(), size: fi.Size(), dev: dev, ino: ino})
	}
	return out, nil
}

// load runs load on the files and records their version. A version that
// changed while it was read is not recorded, so the next check reads it again.
func (f *fileSet) load(load func() error) error {
	before, err := f.stamps()
	if err != nil {
		return err
	}
	err = load()
	if after, serr := f.stamps(); serr == nil && slices.Equal(before, after) {
		f.seen = before
	} else {
		f.seen = nil
	}
	return err
}

// maybeReload loads the files again if they changed since the version last
// tried, and reports whether a new version loaded. A version that does not
// load is logged as an error and leaves the previous one in use.
func (f *fileSet) maybeReload(log *slog.Logger, load func() error) bool {
	st, err := f.stamps()
	if err != nil {
		if !f.statErr {
			f.statErr = true
			log.Error(f.what+" files cannot be read: keeping the previous one", "keys", f.keys, "files", f.paths, "err", err)
		}
		return false
	}
	f.statErr = false
	if slices.Equal(st, f.seen) {
		return false
	}
	if err := f.load(load); err != nil {
		log.Error(f.what+" files changed but do not load: keeping the previous one", "keys", f.keys, "files", f.paths, "err", err)
		return false
	}
	return true
}
