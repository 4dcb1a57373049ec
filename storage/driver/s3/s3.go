// Package s3 is the storage driver that keeps every object in one bucket of an
// S3-compatible object store, so that several registry (and trustd) replicas can
// share their state. The object at driver path "/a/b" is the key "<prefix>/a/b";
// directories are key prefixes and exist exactly while keys exist below them.
//
// How the contract maps onto S3:
//
//   - PutContent and PutContentIf are one PutObject each, atomic by S3's own
//     guarantee. The version is the ETag without quotes; IfAbsent sends
//     "If-None-Match: *" and IfMatch sends "If-Match", so compare-and-swap is
//     decided by the server for every replica at once. 412, and 409
//     ConditionalRequestConflict (a conditional write racing another), are
//     driver.ErrPreconditionFailed; so is a 404 to an If-Match.
//   - A Writer's content is always one ordinary object at its path, so a Writer
//     closed on one replica resumes on any other with nothing but the path and
//     the offset. See writer.go for how bytes are buffered into multipart parts
//     and when they become visible.
//   - Move is a server-side copy and a delete: S3 has no rename. A replica that
//     dies between them leaves both objects, and the caller's retry moves again.
//   - Nothing is checked before a write for the prefix rule ("a" and "a/b" both
//     objects): that would cost a List per write. File-backed servers (versitygw's
//     posix backend) refuse such writes with 409 ExistingObjectIsDirectory or
//     ObjectParentIsFile, which the driver reports as driver.ErrInvalidPath; on
//     AWS S3 both objects coexist, which the contract also allows. Such a server
//     also refuses, for a moment, a write into a directory it is removing because
//     its last object was just deleted (a collection racing a push): PutContent
//     tries a refused write twice more before it reports the conflict.
//   - Keys whose components are not valid driver path components (left by other
//     tools) are hidden from List and Walk.
//   - A sick endpoint is bounded (transport.go): a connection on which nothing
//     moves for Config.Timeout fails, the SDK retries what may pass a bounded
//     number of times, and what still fails and may pass (5xx, throttling,
//     resets, timeouts) is driver.ErrUnavailable.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/signet-oss/signet/storage/driver"
)

const (
	// DefaultRegion is the region used when Config.Region is empty.
	DefaultRegion = "us-east-1"
	// DefaultPartSize is the size of a Writer's multipart parts, and so of the
	// buffer each open Writer holds, when Config.PartSize is zero.
	DefaultPartSize = 16 << 20
	// minPartSize is S3's smallest part but the last of a multipart upload.
	minPartSize = 5 << 20
	// maxCopySize is S3's largest single CopyObject and UploadPartCopy.
	maxCopySize = 5 << 30
	// maxDeleteBatch is S3's largest DeleteObjects request.
	maxDeleteBatch = 1000
)

// Config selects the bucket and how to reach it.
type Config struct {
	// Endpoint is the URL of an S3-compatible server ("http://127.0.0.1:7070").
	// Empty means AWS S3 in Region. A custom endpoint is addressed path-style
	// ("<endpoint>/<bucket>/<key>"), which every S3-compatible server accepts.
	Endpoint string
	// Bucket holds the objects; it must exist. Required.
	Bucket string
	// Region signs the requests. Default DefaultRegion.
	Region string
	// Prefix, if set, puts every key under "<Prefix>/", so that several
	// deployments can share a bucket. Slashes around it are ignored.
	Prefix string
	// AccessKey and SecretKey, if set, are the credentials. Otherwise they come
	// from the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
	// (and AWS_SESSION_TOKEN), then shared config files, then instance roles.
	AccessKey, SecretKey string
	// PartSize is the multipart part size of Writers, at least 5 MiB. Default
	// DefaultPartSize. Each open Writer buffers up to one part in memory.
	PartSize int64
	// SignPayload makes every request's signature cover its body's SHA-256 as
	// well as its headers. Off by default: hashing each body costs two thirds of
	// a blob upload's time (measured on versitygw, 90 against 290 MB/s for 64 MiB),
	// TLS already protects bodies in transit, and the registry checks each blob's
	// digest as it streams in. Turn it on for a plain-HTTP endpoint on another host.
	SignPayload bool
	// Timeout bounds every wait on the endpoint: connecting, and any pause in
	// a request during which no byte moves either way. Such an attempt fails and
	// is retried (see transport.go). Default DefaultTimeout.
	Timeout time.Duration
}

// Driver is the s3 driver. Create it with New. All methods are safe for concurrent
// use, and any number of Drivers, in any number of processes, may share a bucket
// and prefix.
type Driver struct {
	client    *s3.Client
	bucket    string
	keyPrefix string // "" or "<prefix>/"
	partSize  int64

	// open holds this process's open Writers by path, so that a read of the path
	// first makes their bytes visible (see Writer).
	mu   sync.Mutex
	open map[string]*writer
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for cfg's bucket, after checking that the bucket answers.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: config: bucket is required")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("s3: config: part size %d is below S3's minimum of %d", cfg.PartSize, minPartSize)
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("s3: config: timeout %s is negative", cfg.Timeout)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("s3: config: access key and secret key go together")
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		o.HTTPClient = httpClient(o.HTTPClient, cfg.Timeout)
		o.Retryer = retryer()
		// The SDK's checksums only where S3 requires them: not every
		// S3-compatible server knows the newer headers. Whole-object puts
		// carry Content-MD5, which every one checks (see contentMD5).
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if !cfg.SignPayload {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	})
	d := &Driver{
		client:   client,
		bucket:   cfg.Bucket,
		partSize: cfg.PartSize,
		open:     map[string]*writer{},
	}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		d.keyPrefix = p + "/"
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(d.bucket)}); err != nil {
		return nil, fmt.Errorf("s3: bucket %q at %s: %w", d.bucket, endpointName(cfg), err)
	}
	return d, nil
}

func endpointName(cfg Config) string {
	if cfg.Endpoint != "" {
		return cfg.Endpoint
	}
	return "AWS S3 " + cfg.Region
}

// Name returns "s3".
func (d *Driver) Name() string { return "s3" }

// objectKey validates a path that names an object (anything but the root) and
// returns its key.
func (d *Driver) objectKey(path string) (string, error) {
	if path == "/" || !driver.ValidPath(path) {
		return "", invalidPath(path)
	}
	return d.keyPrefix + path[1:], nil
}

// dirPrefix validates a directory path and returns the key prefix of everything
// below it ("<prefix>/a/b/" for "/a/b", the key prefix itself for the root).
func (d *Driver) dirPrefix(path string) (string, error) {
	if !driver.ValidPath(path) {
		return "", invalidPath(path)
	}
	if path == "/" {
		return d.keyPrefix, nil
	}
	return d.keyPrefix + path[1:] + "/", nil
}

// pathOf returns the driver path of a key below the key prefix.
func (d *Driver) pathOf(key string) string {
	return "/" + strings.TrimPrefix(key, d.keyPrefix)
}

// validRel reports whether rel, a key with the key prefix removed, is a valid
// driver path without its leading slash.
func validRel(rel string) bool { return rel != "" && driver.ValidPath("/"+rel) }

func notFound(path string) error    { return fmt.Errorf("%w: %s", driver.ErrNotFound, path) }
func invalidPath(path string) error { return fmt.Errorf("%w: %q", driver.ErrInvalidPath, path) }

// apiError returns the S3 error code and HTTP status of err ("", 0 if it has none).
func apiError(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func isNotFound(err error) bool {
	code, status := apiError(err)
	return status == http.StatusNotFound || code == "NoSuchKey" || code == "NotFound"
}

func isPreconditionFailed(err error) bool {
	code, status := apiError(err)
	return status == http.StatusPreconditionFailed || code == "PreconditionFailed" ||
		code == "ConditionalRequestConflict"
}

// isPrefixConflict reports a file-backed server's refusal of a key that is a
// directory, or lies below an object.
func isPrefixConflict(err error) bool {
	code, _ := apiError(err)
	return code == "ExistingObjectIsDirectory" || code == "ObjectParentIsFile"
}

// readErr maps the error of a read of path to the driver's errors.
func readErr(op, path string, err error) error {
	if isNotFound(err) {
		return notFound(path)
	}
	return opErr(op, path, err)
}

// writeErr maps the error of a write at path to the driver's errors.
func writeErr(op, path string, err error) error {
	if isPrefixConflict(err) {
		return fmt.Errorf("%w: %s %s: below an object or at a directory", driver.ErrInvalidPath, op, path)
	}
	return opErr(op, path, err)
}

// version turns an ETag into a version: the ETag without its quotes.
func version(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }

// quoted turns a version back into an ETag for If-Match.
func quoted(v string) *string { return aws.String(`"` + v + `"`) }

// Settings are the s3 driver's configuration file keys (storage.s3.* in the
// registry's and trustd's YAML); credentials come from the standard AWS
// environment variables.
type Settings struct {
	// Endpoint is the URL of an S3-compatible server; empty means AWS S3.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the objects; it must exist.
	Bucket string `yaml:"bucket"`
	// Region (default us-east-1).
	Region string `yaml:"region"`
	// Prefix puts every key under it, so deployments can share a bucket.
	Prefix string `yaml:"prefix"`
	// Timeout is how long a request may wait on the endpoint without a byte
	// moving before the attempt fails and is retried (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Config is the driver configuration of these settings.
func (s Settings) Config() Config {
	return Config{Endpoint: s.Endpoint, Bucket: s.Bucket, Region: s.Region, Prefix: s.Prefix, Timeout: s.Timeout}
}
