package logging

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
)

func TestRecorderAndRequestInfoCarryWhatTheLineNeeds(t *testing.T) {
	r := mux.NewRouter()
	r.Use(NoteRoute)
	r.HandleFunc("/orgs/{org}", func(w http.ResponseWriter, r *http.Request) {
		SetSubject(r.Context(), "alice")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("hello"))
	})
	ri := &RequestInfo{}
	req := httptest.NewRequest(http.MethodPut, "/orgs/acme", nil)
	req = req.WithContext(WithRequestInfo(req.Context(), ri))
	rec := NewRecorder(httptest.NewRecorder())
	r.ServeHTTP(&rec, req)
	if rec.Status != http.StatusCreated || rec.Bytes != 5 {
		t.Errorf("recorded status %d, %d bytes; want 201, 5", rec.Status, rec.Bytes)
	}
	if ri.Route != "/orgs/{org}" || ri.Sub != "alice" {
		t.Errorf("request info %+v, want route /orgs/{org}, sub alice", *ri)
	}
	if http.NewResponseController(&rec) == nil || rec.Unwrap() == nil {
		t.Error("the recorder does not unwrap")
	}

	// Without a handler's WriteHeader the status is 200; without a carrier
	// SetSubject does nothing.
	rec = NewRecorder(httptest.NewRecorder())
	SetSubject(httptest.NewRequest(http.MethodGet, "/", nil).Context(), "bob")
	rec.Write([]byte("x"))
	if rec.Status != http.StatusOK {
		t.Errorf("default status %d, want 200", rec.Status)
	}
}
