package inmemory_test

import (
	"testing"

	"github.com/signet-oss/signet/registry/storage/driver"
	"github.com/signet-oss/signet/registry/storage/driver/inmemory"
	"github.com/signet-oss/signet/registry/storage/driver/testsuite"
)

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) driver.Driver { return inmemory.New() })
}
