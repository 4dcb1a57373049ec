package serverconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
)

type config struct {
	Addr string `yaml:"addr"`
	Data string `yaml:"data"`
}

func TestDecodeReadsOverTheDefaultsAndRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := config{Addr: ":1", Data: "d"}
	if err := Decode(write("a.yaml", "addr: :2\n"), &cfg); err != nil || cfg != (config{Addr: ":2", Data: "d"}) {
		t.Errorf("decoded %+v, %v; want addr :2 over data d", cfg, err)
	}
	cfg = config{Addr: ":1"}
	if err := Decode(write("empty.yaml", ""), &cfg); err != nil || cfg.Addr != ":1" {
		t.Errorf("an empty file: %+v, %v; want the defaults", cfg, err)
	}
	if err := Decode(write("bad.yaml", "adr: :2\n"), &cfg); err == nil || !strings.Contains(err.Error(), "adr") {
		t.Errorf("an unknown key: %v, want an error naming it", err)
	}
	if err := Decode(filepath.Join(dir, "missing.yaml"), &cfg); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestCommonNamesEachWrongKeyInOrder(t *testing.T) {
	if errs := Common(":1", t.TempDir(), driverconfig.Config{Driver: "filesystem"}, logging.Defaults(), nil); len(errs) != 0 {
		t.Fatalf("a good config: %v", errs)
	}
	errs := Common("", t.TempDir(), driverconfig.Config{Driver: "filesystem"}, logging.Config{Level: "loud", Format: "text"}, errors.New("tls.key: must be set with tls.cert"))
	got := errors.Join(errs...).Error()
	for i, want := range []string{"addr:", "loud", "tls.key:"} {
		if !strings.Contains(strings.Split(got, "\n")[i], want) {
			t.Errorf("error %d of %q does not name %q", i, got, want)
		}
	}
}
