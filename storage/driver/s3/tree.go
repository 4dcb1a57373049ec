package s3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signet-oss/signet/storage/driver"
)

// List is a paginated ListObjectsV2 with delimiter "/": its keys are the child
// objects and its common prefixes the child directories.
func (d *Driver) List(ctx context.Context, path string) ([]string, error) {
	prefix, err := d.dirPrefix(path)
	if err != nil {
		return nil, err
	}
	var children []string
	pages := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{
		Bucket: &d.bucket, Prefix: &prefix, Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, opErr("list", path, err)
		}
		for _, o := range page.Contents {
			if rel := strings.TrimPrefix(aws.ToString(o.Key), d.keyPrefix); validRel(rel) {
				children = append(children, "/"+rel)
			}
		}
		for _, p := range page.CommonPrefixes {
			rel := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), d.keyPrefix), "/")
			if validRel(rel) {
				children = append(children, "/"+rel)
			}
		}
	}
	if len(children) == 0 && path != "/" {
		return nil, notFound(path)
	}
	// S3 returns keys and prefixes as two sorted lists; merge them by name.
	slices.Sort(children)
	return children, nil
}

// listAll returns every object below prefix with one flat, paginated listing
// (1000 keys a request, instead of a request per directory), hiding invalid keys.
func (d *Driver) listAll(ctx context.Context, prefix string) ([]types.Object, error) {
	var objects []types.Object
	pages := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			if validRel(strings.TrimPrefix(aws.ToString(o.Key), d.keyPrefix)) {
				objects = append(objects, o)
			}
		}
	}
	return objects, nil
}

// Walk lists everything below path with one flat listing and replays it depth
// first by component name. S3 orders keys by bytes, where "a-b/x" < "a.c" <
// "a/z" but by name a < a-b < a.c; comparing keys with "/" as the lowest byte
// gives the walk's order. The listing is held in memory, about 100 bytes per
// object: a walk of a million blobs takes some 100 MB.
func (d *Driver) Walk(ctx context.Context, path string, fn func(driver.FileInfo) error) error {
	prefix, err := d.dirPrefix(path)
	if err != nil {
		return err
	}
	objects, err := d.listAll(ctx, prefix)
	if err != nil {
		return opErr("walk", path, err)
	}
	if len(objects) == 0 {
		if path == "/" {
			return nil
		}
		return notFound(path)
	}
	rels := make([]string, len(objects))
	for i, o := range objects {
		rels[i] = strings.TrimPrefix(aws.ToString(o.Key), prefix)
	}
	order := make([]int, len(objects))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return compareByComponent(rels[a], rels[b]) })

	base := strings.TrimSuffix(d.pathOf(prefix), "/") // "" for the root
	var open []string                                 // directories of the previous object, outermost first
	skip := ""                                        // prefix of the directory being skipped
	for _, i := range order {
		rel := rels[i]
		if skip != "" && strings.HasPrefix(rel, skip) {
			continue
		}
		skip = ""
		dirs := dirsOf(rel)
		common := 0
		for common < len(open) && common < len(dirs) && open[common] == dirs[common] {
			common++
		}
		open = open[:common]
		skipped := false
		for _, dir := range dirs[common:] {
			open = append(open, dir)
			err := fn(driver.FileInfo{Path: base + "/" + dir, IsDir: true})
			if errors.Is(err, driver.ErrSkipDir) {
				skip, skipped = dir+"/", true
				break
			}
			if err != nil {
				return err
			}
		}
		if skipped {
			continue
		}
		o := objects[i]
		err := fn(driver.FileInfo{Path: base + "/" + rel, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		if err != nil && !errors.Is(err, driver.ErrSkipDir) {
			return err
		}
	}
	return nil
}

// dirsOf returns the directories of a relative key, outermost first:
// "a/b/c" has "a" and "a/b".
func dirsOf(rel string) []string {
	var dirs []string
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			dirs = append(dirs, rel[:i])
		}
	}
	return dirs
}

// compareByComponent orders keys component by component: as strings in which
// "/" sorts before every other byte.
func compareByComponent(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		return int(ca) - int(cb)
	}
	return len(a) - len(b)
}

// Delete removes the object at path (HeadObject, DeleteObject), or else every
// object below it (a flat listing and DeleteObjects in batches of 1000). A tree
// deleted while others write into it may keep their new objects.
func (d *Driver) Delete(ctx context.Context, path string) error {
	key, err := d.objectKey(path)
	if err != nil {
		return err
	}
	_, err = d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if err == nil {
		if _, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &key}); err != nil {
			return opErr("delete", path, err)
		}
		return nil
	}
	if !isNotFound(err) {
		return opErr("delete", path, err)
	}
	objects, err := d.listAll(ctx, key+"/")
	if err != nil {
		return opErr("delete", path, err)
	}
	if len(objects) == 0 {
		return notFound(path)
	}
	for batch := range slices.Chunk(objects, maxDeleteBatch) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, o := range batch {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &d.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err == nil && len(out.Errors) > 0 {
			e := out.Errors[0]
			err = fmt.Errorf("%s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		if err != nil {
			return opErr("delete", path, err)
		}
	}
	return nil
}
