package e2e

import "testing"

// TestConformanceS3 runs the OCI conformance suite against a registry whose state is
// in a bucket of a real S3 server (versitygw).
func TestConformanceS3(t *testing.T) {
	t.Parallel()
	runConformance(t, startRegistryOn(t, newS3Store(t)).Addr)
}

// TestClientsS3 runs the real clients' sequences against registries on S3. They
// share one server and one bucket, each under a key prefix of its own, as
// deployments sharing a bucket do.
func TestClientsS3(t *testing.T) {
	t.Parallel()
	bucket := newS3Store(t)
	for _, c := range []struct {
		name string
		run  func(*testing.T, *registry)
	}{
		{"crane", runCrane},
		{"oras", runOras},
		{"regctl", runRegctl},
		{"skopeo", runSkopeo},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, startRegistryOn(t, bucket.withPrefix("e2e-"+c.name)))
		})
	}
}
