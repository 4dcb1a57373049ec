package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/registry"
)

// At info, up's log shows its events and the servers' warnings, not the
// servers' info lines; at debug it shows those too.
func TestUpLogIsOneLinePerEvent(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		var out bytes.Buffer
		l, err := newUpLogger(&out, logging.Config{Level: level, Format: "text"})
		if err != nil {
			t.Fatal(err)
		}
		td, reg := l.server("trustd"), l.server("registry")
		td.Info("request", "method", "POST", "route", "/token", "path", "/token", "status", 401, "remote", "10.0.0.7")
		td.Info("request", "method", "PUT", "route", "/tuf/api/metadata/{role}", "path", "/tuf/api/metadata/org-acme", "status", 201, "sub", "alice")
		reg.Info("no stored trust metadata to start from", "err", "not found")
		reg.Warn("trust metadata refresh failed", "err", "trustd does not answer")
		l.registryEvent(context.Background(), registry.Event{Kind: registry.EventAdmissionDenied, Repo: "acme/app", Tag: "v2",
			Digest: digest.FromString("x"), Actor: "bob", Reason: "not signed for acme/app:v2"})
		l.registryEvent(context.Background(), registry.Event{Kind: registry.EventPush, Repo: "acme/app", Tag: "v1",
			Digest: digest.FromString("y"), Actor: "alice", Admission: registry.AdmissionAdmitted})

		log := out.String()
		for _, want := range []string{
			`msg="login refused: wrong user name, password or token" remote=10.0.0.7`,
			`msg=published role=org-acme by=alice`,
			`level=WARN msg="trust metadata refresh failed" server=registry`,
			`msg="push denied" ref=acme/app:v2`, `reason="not signed for acme/app:v2"`,
			`msg="push admitted" ref=acme/app:v1`,
		} {
			if !strings.Contains(log, want) {
				t.Errorf("at %s the log lacks %q:\n%s", level, want, log)
			}
		}
		servers := strings.Count(log, "level=DEBUG")
		if level == "info" && servers != 0 {
			t.Errorf("at info the servers' info lines are shown:\n%s", log)
		}
		if level == "debug" && servers != 3 {
			t.Errorf("at debug %d of the servers' 3 info lines are shown, as debug:\n%s", servers, log)
		}
	}
	if _, err := newUpLogger(&bytes.Buffer{}, logging.Config{Level: "loud", Format: "text"}); err == nil || !strings.HasPrefix(err.Error(), `--log-level "loud"`) {
		t.Errorf("a bad level: %v, want an error naming --log-level", err)
	}
}
