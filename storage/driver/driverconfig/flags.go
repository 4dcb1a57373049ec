package driverconfig

import (
	"github.com/spf13/pflag"

	"github.com/signet-oss/signet/storage/driver/s3"
)

// Flags are the command-line forms of the storage.* keys, the same on every
// command of either server that opens a store: --storage and --s3-*. Each
// overrides its key when given, and only then.
type Flags struct {
	driver string
	s3     s3.Settings
}

// Register adds the flags to fs; def is the driver the help names as default.
func (f *Flags) Register(fs *pflag.FlagSet, def string) {
	fs.StringVar(&f.driver, "storage", def, "storage driver: filesystem, s3 or inmemory")
	fs.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "s3 driver: URL of an S3-compatible server (empty: AWS S3)")
	fs.StringVar(&f.s3.Bucket, "s3-bucket", "", "s3 driver: the bucket")
	fs.StringVar(&f.s3.Region, "s3-region", "", "s3 driver: the region (default us-east-1)")
	fs.StringVar(&f.s3.Prefix, "s3-prefix", "", "s3 driver: a key prefix, to share a bucket")
	fs.DurationVar(&f.s3.Timeout, "s3-timeout", 0, "s3 driver: how long a request may wait without a byte moving before it is retried (default 30s)")
}

// Apply sets the keys of c whose flags were given on fs.
func (f *Flags) Apply(fs *pflag.FlagSet, c *Config) {
	if fs.Changed("storage") {
		c.Driver = f.driver
	}
	for flag, set := range map[string]func(){
		"s3-endpoint": func() { c.S3.Endpoint = f.s3.Endpoint },
		"s3-bucket":   func() { c.S3.Bucket = f.s3.Bucket },
		"s3-region":   func() { c.S3.Region = f.s3.Region },
		"s3-prefix":   func() { c.S3.Prefix = f.s3.Prefix },
		"s3-timeout":  func() { c.S3.Timeout = f.s3.Timeout },
	} {
		if fs.Changed(flag) {
			set()
		}
	}
}
