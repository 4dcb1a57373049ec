// Command notation-signet is the notation plugin that signs with Signet's
// keys: installed with `notation plugin install --file notation-signet` (or
// `trustctl notation setup`), it answers get-plugin-metadata, describe-key and
// generate-signature for keys of the key store in $SIGNET_HOME/keys, named by
// notation's key ID. Its logic is package client/notation; this is wiring.
//
// It is a program of its own rather than trustctl answering under another name:
// notation copies the plugin file into its plugin directory and runs it for
// every signature, with a protocol in which stdout and stderr carry only
// notation's JSON, and commands (get-plugin-metadata...) that are no trustctl
// commands. A separate program keeps trustctl's command tree and its messages
// out of that protocol, needs no dispatch on the name it was run by, and is the
// smaller file to copy: it talks to no server and only signs, with a key it
// never writes anywhere.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/notaryproject/notation-plugin-framework-go/cli"
	"github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/client/trust"
)

func main() {
	keyDir := func() (string, error) {
		home, err := client.SignetHome()
		if err != nil {
			return "", err
		}
		return trust.KeyDir(home), nil
	}
	c, err := cli.New(&notation.Plugin{KeyDir: keyDir, TTY: "/dev/tty"})
	if err != nil {
		fail(plugin.NewGenericError(err.Error()))
	}
	c.Execute(context.Background(), os.Args)
}

// fail writes the plugin specification's error JSON on stderr and exits 1.
func fail(err *plugin.Error) {
	fmt.Fprint(os.Stderr, err.Error())
	os.Exit(1)
}
