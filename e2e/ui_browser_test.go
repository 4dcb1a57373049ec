package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/signet-oss/signet/internal/testtools"
)

// artifactsDir is where tests leave files for people to look at:
// $SIGNET_TEST_ARTIFACTS, else a directory under the system's temporary one
// that outlives the test.
func artifactsDir(t *testing.T, name string) string {
	base := os.Getenv("SIGNET_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "signet-test-artifacts")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleLog collects what the browser's console and log say, errors only.
type consoleLog struct {
	mu     sync.Mutex
	errors []string
}

func (c *consoleLog) add(s string) {
	c.mu.Lock()
	c.errors = append(c.errors, s)
	c.mu.Unlock()
}

// take returns what was collected since the last take.
func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.errors
	c.errors = nil
	return out
}

// webUIInBrowser signs in with headless Chromium and loads every page, with no
// console error (a CSP violation is one), leaving a screenshot of each.
func webUIInBrowser(t *testing.T, st *stack, user, password string) {
	chromium := testtools.MustPath(t, "chromium")
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	console := &consoleLog{}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || strings.Contains(e.Entry.Text, "Content Security Policy") {
				console.add(e.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				console.add("console.error")
			}
		case *runtime.EventExceptionThrown:
			console.add(e.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	dir := artifactsDir(t, "webui")
	base := st.URL("")
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("header .signout")),
	)
	if err != nil {
		t.Fatalf("signing in with chromium: %v", err)
	}
	for _, page := range []struct{ name, path, wait string }{
		{"repositories", "/ui/repos?q=app", "table.repos"},
		{"repository", "/ui/r/acme/app", "table.tags"},
		{"audit", "/ui/audit", "form.filters"},
		{"trust-graph", "/ui/trust", "svg.graph"},
		{"organisation", "/ui/orgs/acme", "form.robot"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+page.path), chromedp.WaitVisible(chromedp.CSS(page.wait))); err != nil {
			t.Errorf("loading %s in chromium: %v", page.path, err)
			continue
		}
		header, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).backgroundColor`))
		if err != nil || header != "rgb(255, 255, 255)" {
			t.Errorf("%s: the header's background is %q (%v): the stylesheet did not apply", page.path, header, err)
		}
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot of %s: %v", page.path, err)
		} else if err := os.WriteFile(filepath.Join(dir, page.name+".png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		if errs := console.take(); len(errs) > 0 {
			t.Errorf("%s: the console has errors (a CSP violation is one): %q", page.path, errs)
		}
	}
	// The listener does see a violation: an inline script is refused, and said so.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`(() => { const s = document.createElement("script"); s.textContent = "window.ran = 1"; document.body.appendChild(s); return null; })()`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ran === 1`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := console.take(); ran || !strings.Contains(strings.Join(errs, " "), "Content Security Policy") {
		t.Errorf("an inline script ran (%v) or its refusal was not logged: %q", ran, errs)
	}
	t.Logf("screenshots in %s", dir)
}
