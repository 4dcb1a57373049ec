package testlog

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				log.Info("line", "writer", i, "n", j)
				_ = b.String() // a reader while the writers write
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "msg=line"); got != 800 {
		t.Errorf("%d lines kept, want 800", got)
	}
}

func TestBufferMax(t *testing.T) {
	b := Buffer{Max: 10}
	for range 3 {
		if n, err := b.WriteString("12345678"); n != 8 || err != nil {
			t.Fatalf("WriteString = %d, %v; want 8, nil", n, err)
		}
	}
	if got := b.String(); got != "1234567812345678" {
		t.Errorf("kept %q, want the writes up to the first past Max", got)
	}
}

func TestTail(t *testing.T) {
	var b Buffer
	for i := range 5 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	fmt.Fprintf(&b, "%s\n", strings.Repeat("x", 600))
	want := "... (4 lines before)\nline 4\n" + strings.Repeat("x", 500) + "..."
	if got := b.Tail(2); got != want {
		t.Errorf("Tail(2) = %q, want %q", got, want)
	}
	if got := b.Tail(10); !strings.HasPrefix(got, "line 0\n") {
		t.Errorf("Tail(10) of 6 lines = %q, want all of them", got)
	}
}
