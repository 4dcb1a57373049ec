package notify

import (
	"errors"
	"testing"
	"time"
)

func TestSignatureMatchesTheDocumentedConstruction(t *testing.T) {
	// HMAC-SHA256("secret", "1700000000.{}"), computed independently with
	// printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
	const want = "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := Sign([]byte("secret"), time.Unix(1700000000, 0), []byte("{}")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"specversion":"1.0"}`)
	now := time.Unix(1700000000, 0)
	good := Sign(secret, now, body)
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"a fresh signature of the body verifies", secret, good, body, now, nil},
		{"one of several v1 values may match (a rotation)", secret, good[:len("t=1700000000")] + ",v1=00ff," + good[len("t=1700000000,"):], body, now, nil},
		{"a changed body does not verify", secret, good, []byte(`{"specversion":"1.1"}`), now, ErrSignatureMismatch},
		{"another secret does not verify", []byte("other"), good, body, now, ErrSignatureMismatch},
		{"a signature older than the tolerance is a replay", secret, good, body, now.Add(6 * time.Minute), ErrSignatureExpired},
		{"a signature from the future is refused too", secret, good, body, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"a changed timestamp does not verify", secret, "t=1700000001" + good[len("t=1700000000"):], body, now, ErrSignatureMismatch},
		{"no timestamp is malformed", secret, good[len("t=1700000000,"):], body, now, ErrSignatureMalformed},
		{"no v1 is malformed", secret, "t=1700000000", body, now, ErrSignatureMalformed},
		{"non-hex v1 is malformed", secret, "t=1700000000,v1=zz", body, now, ErrSignatureMalformed},
		{"an empty header is malformed", secret, "", body, now, ErrSignatureMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify(%q) = %v, want %v", tc.header, err, tc.want)
			}
		})
	}
}
