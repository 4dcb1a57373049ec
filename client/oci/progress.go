package oci

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/signet-oss/signet/internal/humanize"
)

// Progress draws one line of transfer progress on a terminal, redrawn a few
// times a second. A nil *Progress draws nothing: NewProgress returns nil when
// the writer is not a terminal, so piped output stays clean.
type Progress struct {
	w     io.Writer
	verb  string
	total atomic.Int64
	done  atomic.Int64
	items atomic.Int64
	fin   atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewProgress returns a progress line on f for verb ("pushing", "pulling")
// when f is a terminal, else nil.
func NewProgress(f *os.File, verb string) *Progress {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &Progress{w: f, verb: verb, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

// Expect adds n items of size bytes to the totals.
func (p *Progress) Expect(items int, size int64) {
	if p != nil {
		p.items.Add(int64(items))
		p.total.Add(size)
	}
}

// Add counts n bytes transferred.
func (p *Progress) Add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// Finish counts one item done.
func (p *Progress) Finish() {
	if p != nil {
		p.fin.Add(1)
	}
}

// Close stops redrawing and ends the line.
func (p *Progress) Close() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *Progress) draw() {
	done, total := p.done.Load(), p.total.Load()
	rate := float64(done) / time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\033[K%s: %d/%d blobs, %s / %s, %s/s", p.verb, p.fin.Load(), p.items.Load(), humanize.Bytes(done), humanize.Bytes(total), humanize.Bytes(int64(rate)))
}
