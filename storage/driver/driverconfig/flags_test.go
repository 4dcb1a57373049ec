package driverconfig_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/storage/driver/s3"
)

// TestFlagsOverrideOnlyTheKeysGiven: each storage flag sets its key when given,
// and a flag left out keeps what the config file said.
func TestFlagsOverrideOnlyTheKeysGiven(t *testing.T) {
	fromFile := driverconfig.Config{Driver: "filesystem", S3: s3.Settings{Bucket: "from-file", Region: "eu-west-1", Prefix: "p/"}}
	for _, tc := range []struct {
		name string
		args []string
		want driverconfig.Config
	}{
		{"no flag keeps the file", nil, fromFile},
		{"every flag overrides its key", []string{"--storage", "s3", "--s3-endpoint", "http://127.0.0.1:7070", "--s3-bucket", "b", "--s3-region", "r", "--s3-prefix", "x/", "--s3-timeout", "5s"},
			driverconfig.Config{Driver: "s3", S3: s3.Settings{Endpoint: "http://127.0.0.1:7070", Bucket: "b", Region: "r", Prefix: "x/", Timeout: 5 * time.Second}}},
		{"one flag overrides one key", []string{"--s3-bucket", "other"},
			driverconfig.Config{Driver: "filesystem", S3: s3.Settings{Bucket: "other", Region: "eu-west-1", Prefix: "p/"}}},
		{"an empty value given is given", []string{"--s3-prefix", ""},
			driverconfig.Config{Driver: "filesystem", S3: s3.Settings{Bucket: "from-file", Region: "eu-west-1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f driverconfig.Flags
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			f.Register(fs, "filesystem")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got := fromFile
			f.Apply(fs, &got)
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
