//go:build !linux

package agent

import (
	"errors"
	"io/fs"
	"net"
)

var errLinuxOnly = errors.New("agent: the signing agent needs Linux (SO_PEERCRED)")

func peerCred(*net.UnixConn) (int, int, error) { return -1, 0, errLinuxOnly }

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

// Harden fails: the agent runs on Linux only.
func Harden() (string, error) { return "", errLinuxOnly }

// RemoveOnDeath fails: the agent runs on Linux only.
func (a *Agent) RemoveOnDeath() error { return errLinuxOnly }
