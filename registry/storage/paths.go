package storage

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// The whole layout of registry state on a storage driver, in one place:
//
//	/v1
//	├── blobs/<alg>/<first 2 hex>/<hex>                 blob bytes, committed whole by Move
//	├── blobrefs/<alg>/<first 2 hex>/<hex>              instead, on drivers whose Move copies (S3):
//	│                                                   JSON {"data": <path of the bytes>, "size": n}
//	├── data/<upload id>                                the bytes a blobref points at, written in place
//	├── repos/<name>/                                   <name> may span several components
//	│   ├── _blobs/<alg>/<hex>                          empty object: the blob is in this repository
//	│   ├── _manifests/<alg>/<hex>                      "<media type>\n" then the manifest bytes
//	│   ├── _tags/<tag>                                 the tagged manifest's digest
//	│   ├── _referrers/<alg>/<subject hex>/<alg>-<hex>  descriptor (JSON) of a manifest whose subject is <subject>
//	│   └── _admitted/<alg>/<hex>                       the subject's digest: the gate admitted this
//	│                                                   manifest as a signature artifact of it
//	├── uploads/<id>.data                               bytes of an upload session so far
//	├── uploads/<id>.state                              JSON: repository, committed offset, hash state
//	├── uploads/<id>.whole                              a session's first chunk, put whole (no state needed)
//	├── uploads/keep                                    empty: keeps the directory (not on drivers whose Move copies)
//	├── secrets/upload-key                              HMAC key that signs upload session IDs
//	├── notifications/                                  the webhook queue, laid out in registry/notify/queue.go
//	└── trust/<name>.json                               the gate's verified TUF metadata (root versions,
//	                                                    timestamp, snapshot, targets, delegated roles)
//
// Beside /v1, the registry's audit log lives under /audit/v1 (layout: audit/layout.go).
//
// Invariant: no object sits at a path that is a prefix of another object's path.
// Repository name components never start with "_" (the name grammar forbids it), so
// "_blobs", "_manifests", "_tags" and "_referrers" never collide with a nested
// repository; every object is a leaf under one of those directories.

const root = "/v1"

func blobPath(d digest.Digest) string {
	hex := d.Encoded()
	return root + "/blobs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex
}

func blobRefPath(d digest.Digest) string {
	hex := d.Encoded()
	return root + "/blobrefs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex
}

func dataDir() string { return root + "/data" }

func repoPath(repo string) string { return root + "/repos/" + repo }

func reposRoot() string { return root + "/repos" }

func blobLinkPath(repo string, d digest.Digest) string {
	return repoPath(repo) + "/_blobs/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func manifestPath(repo string, d digest.Digest) string {
	return repoPath(repo) + "/_manifests/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func manifestsDir(repo string) string { return repoPath(repo) + "/_manifests" }

func tagsDir(repo string) string { return repoPath(repo) + "/_tags" }

func tagPath(repo, tag string) string { return tagsDir(repo) + "/" + tag }

func referrersDir(repo string, subject digest.Digest) string {
	return repoPath(repo) + "/_referrers/" + string(subject.Algorithm()) + "/" + subject.Encoded()
}

func referrerPath(repo string, subject, d digest.Digest) string {
	return referrersDir(repo, subject) + "/" + string(d.Algorithm()) + "-" + d.Encoded()
}

// Upload sessions are flat files, not a directory each: a one-request upload then
// creates no directory to sync and to prune.
func uploadsDir() string { return root + "/uploads" }

func uploadDataPath(id string) string { return uploadsDir() + "/" + id + ".data" }

func uploadStatePath(id string) string { return uploadsDir() + "/" + id + ".state" }

func uploadWholePath(id string) string { return uploadsDir() + "/" + id + ".whole" }

// uploadKeepPath is an empty object that keeps the upload area's directory when
// no session is open. Its name has no ".", so garbage collection never takes it
// for a session.
func uploadKeepPath() string { return uploadsDir() + "/keep" }

func admittedDir(repo string) string { return repoPath(repo) + "/_admitted" }

func admittedPath(repo string, d digest.Digest) string {
	return admittedDir(repo) + "/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func trustMetadataPath(name string) string { return root + "/trust/" + name }

func uploadKeyPath() string { return root + "/secrets/upload-key" }

// repoFromManifestsDir returns the repository whose _manifests directory is p.
func repoFromManifestsDir(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, reposRoot()+"/")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "/_manifests")
}
