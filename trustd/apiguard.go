package trustd

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Cross-site request refusal for the management API. A browser presents a
// client certificate (and would present cookies, were there any) on its own, to
// any page that asks: without these checks a page on another site could make a
// logged-in admin's browser POST a form that creates a user, a grant or a robot.
// A form or a no-preflight fetch can only send text/plain,
// application/x-www-form-urlencoded, multipart/form-data or no Content-Type, so
// a body must say it is application/json (which a cross-site page can send only
// after a CORS preflight that trustd never answers); and a browser names where a
// request comes from in Sec-Fetch-Site and Origin, which must be this origin.
// trustctl and other non-browser clients send neither header.

// codeUnsupportedMediaType is sent for a body that is not JSON.
var codeUnsupportedMediaType = ErrorCode{Code: "UNSUPPORTED_MEDIA_TYPE", Status: http.StatusUnsupportedMediaType, Message: "the body must be application/json"}

// checkAPIRequest refuses a management API request that a page on another site
// could have made a browser send: a body (or a Content-Type) that is not
// application/json gets 415, a cross-site Sec-Fetch-Site or a foreign Origin 403.
func checkAPIRequest(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("%w: a %s browser request (Sec-Fetch-Site) may not use this API", errDenied, site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
		return fmt.Errorf("%w: a request from the origin %q may not use this API", errDenied, origin)
	}
	ct := r.Header.Get("Content-Type")
	if r.ContentLength != 0 || ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			if ct == "" {
				ct = "none"
			}
			return newAPIError(codeUnsupportedMediaType, fmt.Sprintf("the body's Content-Type is %q: send application/json", ct))
		}
	}
	return nil
}

// sameOrigin reports whether origin (an Origin header: scheme://host[:port], or
// "null") is the origin r was sent to.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) {
		return false
	}
	return strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme))
}

// withPort is host with scheme's default port when it names none.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
