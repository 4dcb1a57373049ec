package main

import (
	"fmt"
	"os"

	"github.com/signet-oss/signet/client"
	"github.com/spf13/cobra"
)

func newLoginCmd(g *globals) *cobra.Command {
	var user string
	var passwordStdin, plainHTTP bool
	cmd := &cobra.Command{
		Use:   "login HOST",
		Short: "Log in to a Signet registry and keep the login the way docker does",
		Long: `login exchanges a user name and password for refresh tokens (one for the
registry, one for trustd) and stores them: the registry's in docker's config
(DOCKER_CONFIG or ~/.docker/config.json, through its credential helper if it names
one), so docker, crane, oras, regctl and skopeo share it; both in $SIGNET_HOME.
The password is never stored.`,
		Example: `  echo "$PASSWORD" | trustctl login 127.0.0.1:5000 -u alice --password-stdin`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if user == "" {
				if user, err = client.ReadLine(os.Stdin, os.Stderr, "Username: ", "-u USER"); err != nil {
					return err
				}
			}
			password, err := client.ReadPassword(os.Stdin, os.Stderr, passwordStdin, "Password: ", false)
			if err != nil {
				return err
			}
			home, err := client.LoadHome()
			if err != nil {
				return err
			}
			docker, err := client.LoadDockerConfig()
			if err != nil {
				return err
			}
			res, err := client.Login(cmd.Context(), client.LoginOptions{
				Registry: args[0], PlainHTTP: plainHTTP, User: user, Password: password,
				Docker: docker, Home: home, Tokens: &client.TokenClient{},
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(res)
			}
			fmt.Printf("Logged in to %s as %s.\n", res.Registry, res.User)
			if res.DockerConfig != "" {
				fmt.Printf("Clients that read %s (docker, crane, oras, regctl, skopeo) now use this login.\n", res.DockerConfig)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name (asked on the terminal if not given)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	cmd.Flags().BoolVar(&plainHTTP, "plain-http", false, "use http even for a registry that is not on loopback")
	return cmd
}
