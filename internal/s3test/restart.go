package s3test

import (
	"fmt"
	"strings"
)

// Restart starts the stopped server again on the same address, credentials
// and data: the S3 endpoint its clients were given comes back, as after an
// outage.
func (s *Server) Restart() error {
	select {
	case <-s.srv.exited:
	default:
		return fmt.Errorf("versitygw at %s is still running", s.Endpoint)
	}
	srv, err := launch(s.srv.cmd.Path, strings.TrimPrefix(s.Endpoint, "http://"), s.AccessKey, s.SecretKey, s.DataDir)
	if err != nil {
		return err
	}
	if err := srv.waitReady(s.Endpoint); err != nil {
		srv.stop()
		return err
	}
	s.srv = srv
	return nil
}
