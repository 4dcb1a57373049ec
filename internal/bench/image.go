package bench

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
)

const (
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	// acceptManifest is what clients send when pulling a manifest by tag.
	acceptManifest = mediaTypeManifest + ", application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)

// blob is content with its digest, computed before any timed loop.
type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// image is a config, its layers and the OCI manifest that ties them.
type image struct {
	config   blob
	layers   []blob
	manifest blob
}

func (im *image) size() int64 {
	n := int64(len(im.config.data) + len(im.manifest.data))
	for _, l := range im.layers {
		n += int64(len(l.data))
	}
	return n
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

// newImage builds the config (unique through nonce) and manifest for layers.
func newImage(layers []blob, nonce string) image {
	diffIDs := make([]string, len(layers))
	descs := make([]descriptor, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.digest
		descs[i] = descriptor{mediaTypeLayer, l.digest, len(l.data)}
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       map[string]any{"Labels": map[string]string{"org.signet.bench.nonce": nonce}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		panic(err) // plain maps and strings always marshal
	}
	config := newBlob(cfg)
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        descriptor{mediaTypeConfig, config.digest, len(config.data)},
		"layers":        descs,
	})
	if err != nil {
		panic(err)
	}
	return image{config: config, layers: layers, manifest: newBlob(man)}
}

// plan holds everything both servers are sent, derived from one seed so their
// traffic is identical.
type plan struct {
	cfg  Config
	seed [32]byte
	// large holds the large image's layer buffers, refilled for each push run so
	// the client keeps one image in memory.
	large [][]byte
	// small are the small-image pushes, generated up front.
	small []image
	// warm are the warm-up pushes, kept apart from small so both servers measure
	// the same sequence.
	warm []image
}

func newPlan(cfg Config) (*plan, error) {
	p := &plan{cfg: cfg}
	if _, err := rand.Read(p.seed[:]); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	p.large = make([][]byte, cfg.Layers)
	for i := range p.large {
		p.large[i] = make([]byte, cfg.LayerSize)
	}
	p.small = p.smallImages("small", cfg.SmallMax)
	p.warm = p.smallImages("warm", 64)
	return p, nil
}

// stream returns a deterministic random stream for one purpose of the plan.
func (p *plan) stream(purpose string, n int) *mrand.ChaCha8 {
	s := p.seed
	h := sha256.New()
	h.Write(s[:])
	h.Write([]byte(purpose))
	binary.Write(h, binary.LittleEndian, int64(n))
	copy(s[:], h.Sum(nil))
	return mrand.NewChaCha8(s)
}

// largeImage fills the layer buffers for push run r and hashes them.
func (p *plan) largeImage(r int) image {
	layers := make([]blob, len(p.large))
	for i, buf := range p.large {
		p.stream(fmt.Sprintf("large-%d", r), i).Read(buf)
		layers[i] = newBlob(buf)
	}
	return newImage(layers, fmt.Sprintf("large-%d-%x", r, p.seed[:8]))
}

// smallLayerSize is the size of each small image's only layer.
const smallLayerSize = 2 << 10

func (p *plan) smallImages(kind string, n int) []image {
	rng := p.stream(kind, 0)
	ims := make([]image, n)
	for i := range ims {
		layer := make([]byte, smallLayerSize)
		rng.Read(layer)
		ims[i] = newImage([]blob{newBlob(layer)}, fmt.Sprintf("%s-%d-%x", kind, i, p.seed[:8]))
	}
	return ims
}
