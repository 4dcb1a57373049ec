package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// agentPIDEnv names the variable `agent start` exports with the agent's pid,
// as ssh-agent exports SSH_AGENT_PID: `kill $SIGNET_AGENT_PID` stops it.
const agentPIDEnv = "SIGNET_AGENT_PID"

func newAgentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "A signing agent: unlock keys once, sign without the passphrase",
		Long: `The signing agent is to trustctl what ssh-agent is to ssh. It unlocks keys of
$SIGNET_HOME/keys once (agent add) and signs with them on request over a Unix
socket only its user may use; every signing command (sign, push, copy, the
trust and org commands, the notation-signet plugin) uses it when
$SIGNET_AGENT_SOCK names its socket, and loads keys the agent does not hold as
before. The agent keeps keys in memory only, forgets them after --idle-timeout
without a signature or on agent lock, and logs every signature it makes.`,
		Example: `  eval "$(trustctl agent start)"
  trustctl agent add alice          # asks the passphrase once (or $SIGNET_PASSPHRASE)
  trustctl push ./app-oci 127.0.0.1:5000/acme/app:v1 --key alice
  trustctl agent lock
  kill $SIGNET_AGENT_PID`,
	}
	cmd.AddCommand(newAgentStartCmd(g), newAgentRunCmd(), newAgentAddCmd(g), newAgentListCmd(g), newAgentLockCmd(g))
	return cmd
}

// agentHome is the key directory and the default log of an agent.
func agentHome() (keys, log string, err error) {
	home, err := client.SignetHome()
	if err != nil {
		return "", "", err
	}
	return filepath.Join(home, "keys"), filepath.Join(home, "agent.log"), nil
}

func newAgentStartCmd(g *globals) *cobra.Command {
	var idle time.Duration
	var logPath string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start an agent in the background and print the shell lines that export its socket",
		Long: `start runs an agent in the background on a new socket in $XDG_RUNTIME_DIR (else
the temporary directory) and prints, for eval, the lines that export
SIGNET_AGENT_SOCK and SIGNET_AGENT_PID. The agent logs to --log (default
$SIGNET_HOME/agent.log).`,
		Example: `  eval "$(trustctl agent start)"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, defaultLog, err := agentHome()
			if err != nil {
				return err
			}
			if logPath == "" {
				logPath = defaultLog
			}
			base := os.Getenv("XDG_RUNTIME_DIR")
			if base == "" {
				base = os.TempDir()
			}
			var nonce [8]byte
			rand.Read(nonce[:])
			sock := filepath.Join(base, "signet-agent-"+hex.EncodeToString(nonce[:]), "agent.sock")
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
				return fmt.Errorf("the agent's log: %w", err)
			}
			logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return fmt.Errorf("the agent's log: %w", err)
			}
			defer logFile.Close()
			run := exec.Command(self, "agent", "run", "--socket", sock, "--idle-timeout", idle.String())
			run.Stderr = logFile
			run.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := run.Start(); err != nil {
				return fmt.Errorf("starting the agent: %w", err)
			}
			exited := make(chan error, 1)
			go func() { exited <- run.Wait() }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if c, err := agent.Dial(sock); err == nil {
					c.Close()
					break
				}
				select {
				case err := <-exited:
					return fmt.Errorf("the agent exited (%v): see %s", err, logPath)
				default:
				}
				if time.Now().After(deadline) {
					run.Process.Kill()
					return fmt.Errorf("the agent did not answer on %s within 10s: see %s", sock, logPath)
				}
			}
			if g.output == "json" {
				return printJSON(struct {
					Socket string `json:"socket"`
					PID    int    `json:"pid"`
					Log    string `json:"log"`
				}{sock, run.Process.Pid, logPath})
			}
			fmt.Printf("%s=%s; export %s;\n%s=%d; export %s;\necho Signing agent pid %d;\n",
				agent.SocketEnv, sock, agent.SocketEnv, agentPIDEnv, run.Process.Pid, agentPIDEnv, run.Process.Pid)
			return nil
		},
	}
	cmd.Flags().DurationVar(&idle, "idle-timeout", agent.DefaultIdleTimeout, "forget every key after this long without a signature")
	cmd.Flags().StringVar(&logPath, "log", "", "the agent's log file (default $SIGNET_HOME/agent.log)")
	return cmd
}

func newAgentRunCmd() *cobra.Command {
	var idle time.Duration
	var sock string
	cmd := &cobra.Command{
		Use:   "run --socket PATH",
		Short: "Run an agent in the foreground (for service managers), logging to stderr",
		Long: `run serves on --socket until SIGINT or SIGTERM, logging to stderr. The socket's
directory is created 0700 if missing, and must otherwise be 0700; the socket is
0600 and removed when the agent ends, however it ends.`,
		Example: `  trustctl agent run --socket "$XDG_RUNTIME_DIR/signet/agent.sock"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sock == "" {
				return errors.New("say where to listen: --socket PATH")
			}
			keys, _, err := agentHome()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			hardened, err := agent.Harden()
			if err != nil {
				return err
			}
			a, err := agent.Listen(agent.Config{
				Socket: sock, IdleTimeout: idle, Log: log,
				Open: func(secret []byte) signer.KeyStore {
					return signer.NewUnlockingKeyStore(keys, secret)
				},
			})
			if err != nil {
				return err
			}
			if err := a.RemoveOnDeath(); err != nil {
				return err
			}
			log.Info("signing agent started", "socket", sock, "keys", keys, "idleTimeout", idle, "memory", hardened)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = a.Serve(ctx)
			log.Info("signing agent stopped", "err", err)
			return err
		},
	}
	cmd.Flags().StringVar(&sock, "socket", "", "the socket's path (required)")
	cmd.Flags().DurationVar(&idle, "idle-timeout", agent.DefaultIdleTimeout, "forget every key after this long without a signature")
	return cmd
}

// dialAgent connects to the agent $SIGNET_AGENT_SOCK names.
func dialAgent() (*agent.Client, error) {
	sock := os.Getenv(agent.SocketEnv)
	if sock == "" {
		return nil, fmt.Errorf("no signing agent: %s is not set (eval \"$(trustctl agent start)\")", agent.SocketEnv)
	}
	return agent.Dial(sock)
}

func newAgentAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "add NAME...",
		Short:   "Unlock keys in the agent (a passphrase from $SIGNET_PASSPHRASE, a token key's PIN from $SIGNET_PKCS11_PIN, else asked)",
		Example: `  trustctl agent add alice`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialAgent()
			if err != nil {
				return err
			}
			defer c.Close()
			keys, _, err := agentHome()
			if err != nil {
				return err
			}
			store := signer.NewFileKeyStore(keys, nil)
			var added []agent.KeyInfo
			for _, name := range args {
				info, err := store.Public(cmd.Context(), name)
				if err != nil {
					return err
				}
				pass, err := agentSecret(info)
				if err != nil {
					return err
				}
				k, err := c.Add(name, pass)
				clear(pass)
				if err != nil {
					return err
				}
				added = append(added, *k)
				if g.output != "json" {
					fmt.Printf("Unlocked %s (%s) in the signing agent.\n", k.Name, k.ID)
				}
			}
			if g.output == "json" {
				return printJSON(added)
			}
			return nil
		},
	}
}

func newAgentListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys the agent holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialAgent()
			if err != nil {
				return err
			}
			defer c.Close()
			keys, err := c.List()
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(keys)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKEY ID\tALGORITHM\t")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\n", k.Name, k.ID, k.Algorithm)
			}
			return tw.Flush()
		},
	}
}

func newAgentLockCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "lock",
		Short: "Have the agent forget every key (agent add unlocks them again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialAgent()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Lock(); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(map[string]bool{"locked": true})
			}
			fmt.Fprintln(os.Stderr, "The signing agent forgot every key.")
			return nil
		},
	}
}

// agentSecret is what unlocks a key in the agent: a file key's passphrase
// ($SIGNET_PASSPHRASE, else asked), a token key's PIN (from its URI's
// pin-source, $SIGNET_PKCS11_PIN, else asked here, since the agent has no
// terminal), nothing for a development key.
func agentSecret(info *signer.KeyInfo) ([]byte, error) {
	switch {
	case info.PKCS11 != "":
		u, err := signer.ParsePKCS11URI(info.PKCS11)
		if err != nil {
			return nil, err
		}
		return u.PIN()
	case info.Development:
		return []byte{}, nil
	}
	return signer.Passphrase(false)
}
