package inmemory_test

import (
	"testing"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/storage/driver/testsuite"
)

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) driver.Driver { return inmemory.New() })
}
