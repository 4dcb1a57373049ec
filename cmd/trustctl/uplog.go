package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/registry"
	"github.com/signet-oss/signet/signer"
)

// up's log is for the person who just started a stack: one line per thing that
// happened (a push admitted or denied, and why; a publish to the trust graph;
// a refused login), not the servers' own lines. Those (every request, the
// start-up, the gate's periodic refresh) are debug records within up: what
// is info for an operator running a server is noise next to the banner of a
// local stack. Warnings and errors of the servers pass as they are.

// upLogger is up's log, at the level and in the format of its flags.
type upLogger struct {
	// events is for up's own lines.
	events *slog.Logger
	base   slog.Handler
}

// newUpLogger checks the flags (the servers' log.* keys) and makes the log.
func newUpLogger(w io.Writer, c logging.Config) (*upLogger, error) {
	if err := c.Validate(); err != nil {
		// log.level: "x" is not ... becomes --log-level "x" is not ...
		return nil, errors.New(strings.Replace(strings.Replace(err.Error(), "log.", "--log-", 1), ": ", " ", 1))
	}
	base := c.NewLogger(w).Handler()
	return &upLogger{events: slog.New(base), base: base}, nil
}

// server is the logger given to one of the servers (name: registry, trustd).
func (l *upLogger) server(name string) *slog.Logger {
	return slog.New(&serverLog{Handler: l.base.WithAttrs([]slog.Attr{slog.String("server", name)}), events: l.events, trustd: name == "trustd"})
}

// registryEvent is the registry's event listener: the line of each push
// admitted or denied, and of each pull a pull policy refused.
func (l *upLogger) registryEvent(ctx context.Context, e registry.Event) {
	ref := e.Repo
	if e.Tag != "" {
		ref += ":" + e.Tag
	}
	who := e.Actor
	if who == "" {
		who = "anonymous"
	}
	switch e.Kind {
	case registry.EventPush:
		if e.Admission == "" {
			return // the further tags of one PUT, counted once
		}
		if _, sig := signer.CosignSignatureSubject(e.Tag); sig {
			return // a cosign signature: its signature event says it
		}
		l.events.InfoContext(ctx, "push admitted", "ref", ref, "digest", e.Digest.String(), "by", who, "admission", e.Admission)
	case registry.EventSignature:
		l.events.InfoContext(ctx, "signature admitted", "repo", e.Repo, "signs", e.Subject.String(), "by", who)
	case registry.EventAdmissionDenied:
		l.events.InfoContext(ctx, "push denied", "ref", ref, "digest", e.Digest.String(), "by", who, "reason", e.Reason)
	case registry.EventAdmissionUnavailable:
		l.events.WarnContext(ctx, "push not decided", "ref", ref, "digest", e.Digest.String(), "by", who, "reason", e.Reason)
	case registry.EventPolicyDenied:
		l.events.InfoContext(ctx, "pull refused by the pull policy", "ref", ref, "digest", e.Digest.String(), "by", who, "reason", e.Reason)
	}
}

// serverLog passes a server's warnings and errors on, and its info records as
// debug ones; from trustd's request lines it makes up's lines of publishes
// and refused logins.
type serverLog struct {
	slog.Handler
	events *slog.Logger
	trustd bool
}

// Enabled is true for info records even below the level: trustd's request
// lines are read for events.
func (h *serverLog) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= slog.LevelInfo || h.Handler.Enabled(ctx, lv)
}

func (h *serverLog) Handle(ctx context.Context, r slog.Record) error {
	if h.trustd && r.Message == "request" {
		h.trustdEvent(ctx, r)
	}
	if r.Level == slog.LevelInfo {
		attrs := attrsOf(r)
		r = slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
		r.AddAttrs(attrs...)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *serverLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &serverLog{Handler: h.Handler.WithAttrs(attrs), events: h.events, trustd: h.trustd}
}

func (h *serverLog) WithGroup(name string) slog.Handler {
	return &serverLog{Handler: h.Handler.WithGroup(name), events: h.events, trustd: h.trustd}
}

// trustdEvent writes the line of a publish or a refused login read from one of
// trustd's request lines.
func (h *serverLog) trustdEvent(ctx context.Context, r slog.Record) {
	var method, route, reqPath, remote, sub string
	var status int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "method":
			method = a.Value.String()
		case "route":
			route = a.Value.String()
		case "path":
			reqPath = a.Value.String()
		case "remote":
			remote = a.Value.String()
		case "sub":
			sub = a.Value.String()
		case "status":
			status = a.Value.Int64()
		}
		return true
	})
	switch {
	case route == "/token" && status == 401:
		h.events.InfoContext(ctx, "login refused: wrong user name, password or token", "remote", remote)
	case route == "/token" && status == 429:
		h.events.InfoContext(ctx, "login refused: too many failed attempts from this client", "remote", remote)
	case route == "/tuf/api/metadata/{role}" && method == "PUT" && status == 201:
		h.events.InfoContext(ctx, "published", "role", path.Base(reqPath), "by", sub)
	case route == "/tuf/api/metadata/{role}" && method == "PUT" && status == 202:
		h.events.InfoContext(ctx, "staged, waiting for more signatures or for the roles it delegates", "role", path.Base(reqPath), "by", sub)
	case route == "/tuf/api/init" && status == 201:
		h.events.InfoContext(ctx, "trust root initialised", "by", sub)
	}
}

// attrsOf is a record's attributes.
func attrsOf(r slog.Record) []slog.Attr {
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	return attrs
}
