package s3test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// FaultProxy is an HTTP reverse proxy in front of an S3 server that answers the
// S3 operations a test chooses with S3's own error answers (503 SlowDown, 500
// InternalError, with their XML bodies) and passes every other request through.
// Toxiproxy works on TCP and cannot answer a request; this can.
//
// A failed request's body is read first, as S3 reads an upload before it
// refuses it, so a client that retries must send the same bytes again.
// Requests are forwarded with their Host header, so signatures still verify.
type FaultProxy struct {
	// URL is the proxy's endpoint, http://127.0.0.1:PORT.
	URL string

	mu     sync.Mutex
	faults map[string]*scheduled // by operation
	seen   map[string]int        // requests by operation
	failed map[string]int        // requests answered with a fault, by operation
}

// Fault is an S3 error answer.
type Fault struct {
	Status  int
	Code    string
	Message string
}

// The error answers S3 gives a sick or overloaded backend.
var (
	SlowDown      = Fault{http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."}
	InternalError = Fault{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
)

// scheduled is a fault and how many more requests it answers (-1: all).
type scheduled struct {
	Fault
	left int
}

// S3 operation names, as FaultProxy tells them from a request.
const (
	OpPutObject               = "PutObject"
	OpCopyObject              = "CopyObject"
	OpGetObject               = "GetObject"
	OpHeadObject              = "HeadObject"
	OpDeleteObject            = "DeleteObject"
	OpDeleteObjects           = "DeleteObjects"
	OpListObjectsV2           = "ListObjectsV2"
	OpCreateMultipartUpload   = "CreateMultipartUpload"
	OpUploadPart              = "UploadPart"
	OpUploadPartCopy          = "UploadPartCopy"
	OpCompleteMultipartUpload = "CompleteMultipartUpload"
	OpAbortMultipartUpload    = "AbortMultipartUpload"
	OpBucket                  = "Bucket" // any request on the bucket itself
)

// StartFaultProxy starts a fault proxy on a free loopback port in front of the
// S3 endpoint upstream; it stops when tb ends.
func StartFaultProxy(tb testing.TB, upstream string) *FaultProxy {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		tb.Fatalf("s3test: fault proxy upstream: %v", err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	rp.ErrorLog = log.New(io.Discard, "", 0) // a cut client is what the tests do
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("s3test: fault proxy: %v", err)
	}
	p := &FaultProxy{
		URL:    "http://" + l.Addr().String(),
		faults: map[string]*scheduled{},
		seen:   map[string]int{},
		failed: map[string]int{},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := p.take(Operation(r)); ok {
			io.Copy(io.Discard, r.Body)
			writeFault(w, r, f)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return p
}

// Fail answers the next n requests of operation op with f (n < 0: every one
// until Clear).
func (p *FaultProxy) Fail(op string, f Fault, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[op] = &scheduled{Fault: f, left: n}
}

// Clear removes every scheduled fault.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.faults)
}

// Seen returns how many requests of operation op arrived, failed or not.
func (p *FaultProxy) Seen(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[op]
}

// Failed returns how many requests of operation op were answered with a fault.
func (p *FaultProxy) Failed(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed[op]
}

func (p *FaultProxy) take(op string) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[op]++
	s := p.faults[op]
	if s == nil || s.left == 0 {
		return Fault{}, false
	}
	if s.left > 0 {
		s.left--
	}
	p.failed[op]++
	return s.Fault, true
}

func writeFault(w http.ResponseWriter, r *http.Request, f Fault) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(f.Status)
	if r.Method == http.MethodHead {
		return // S3 answers HEAD with a status only
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>signet-fault</RequestId></Error>`,
		f.Code, f.Message, r.URL.Path)
}

// Operation names the S3 operation of a path-style request.
func Operation(r *http.Request) string {
	q := r.URL.Query()
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case key == "" && r.Method == http.MethodPost && q.Has("delete"):
		return OpDeleteObjects
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		return OpListObjectsV2
	case key == "":
		return OpBucket
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && copySource:
			return OpUploadPartCopy
		case q.Has("partNumber"):
			return OpUploadPart
		case copySource:
			return OpCopyObject
		}
		return OpPutObject
	case http.MethodPost:
		if q.Has("uploads") {
			return OpCreateMultipartUpload
		}
		return OpCompleteMultipartUpload
	case http.MethodGet:
		return OpGetObject
	case http.MethodHead:
		return OpHeadObject
	case http.MethodDelete:
		if q.Has("uploadId") {
			return OpAbortMultipartUpload
		}
		return OpDeleteObject
	}
	return r.Method
}
