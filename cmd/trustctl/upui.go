package main

import (
	"net/http"

	"github.com/signet-oss/signet/registry"
	"github.com/signet-oss/signet/ui"
)

// newUI builds the web UI the stack's registry mounts at /ui/.
func newUI(env registry.UIEnv) (http.Handler, error) {
	return ui.New(ui.Config{Registry: env.Registry, Trustd: env.Trustd, Transport: env.Transport, Secure: env.Secure,
		TrustRoot: env.TrustRoot, Open: env.Open, CacheDir: env.CacheDir, Log: env.Log,
		ClientHeader: registry.UIClientHeader, ClientSecret: env.ClientSecret})
}
