package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/internal/atomicfile"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/trustd"
)

// storageFlags are the flags backup and restore share with serve: where
// trustd's state is.
type storageFlags struct {
	configPath, data string
	storage          driverconfig.Flags
}

func (f *storageFlags) register(cmd *cobra.Command) {
	def := trustd.Defaults()
	cmd.Flags().StringVar(&f.configPath, "config", "", "trustd's YAML configuration file (its data and storage.* keys say where the state is)")
	cmd.Flags().StringVar(&f.data, "data", def.Data, "data directory of the filesystem driver")
	f.storage.Register(cmd.Flags(), def.Storage.Driver)
}

// config loads the configuration with the flags applied.
func (f *storageFlags) config(cmd *cobra.Command) (trustd.Config, error) {
	cfg, err := trustd.LoadConfig(f.configPath)
	if err != nil {
		return cfg, err
	}
	if cmd.Flags().Changed("data") {
		cfg.Data = f.data
	}
	f.storage.Apply(cmd.Flags(), &cfg.Storage)
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Storage.Driver == "inmemory" {
		return cfg, errors.New("storage.driver: the inmemory driver keeps nothing to back up or restore onto")
	}
	return cfg, nil
}

func newBackupCmd() *cobra.Command {
	var sf storageFlags
	var out string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write all of trustd's state to one archive",
		Long: `backup writes all of trustd's state (accounts, robots, organisations, grants,
refresh tokens, signing keys, the audit log, the TUF repository) from its
storage to one gzip-compressed tar archive with a manifest of every file's
sha256, to --out (mode 0600) or stdout. It reads the storage directly and may
run while trustd serves: the TUF repository is copied complete as of one
commit, every other record whole. The objects pass through a temporary file
(mode 0600, in $TMPDIR, removed afterwards); state larger than a restore accepts
(64 MiB for one object, 4 GiB in all) is refused.
The archive holds private keys: keep it as carefully as the data directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.config(cmd)
			if err != nil {
				return err
			}
			d, err := cfg.Storage.Open(cmd.Context(), cfg.Data)
			if err != nil {
				return fmt.Errorf("opening storage: %w", err)
			}
			if out == "" || out == "-" {
				rep, err := trustd.Backup(cmd.Context(), d, cmd.OutOrStdout(), time.Now())
				if err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Backed up %d files (%d bytes) of trustd's state.\n", rep.Files, rep.Bytes)
				}
				return err
			}
			began := false
			err = atomicfile.WriteFunc(out, 0o600, func(w io.Writer) error {
				began = true
				rep, err := trustd.Backup(cmd.Context(), d, w, time.Now())
				if err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Backed up %d files (%d bytes) of trustd's state to %s.\n", rep.Files, rep.Bytes, out)
				}
				return err
			})
			if err != nil && !began {
				return fmt.Errorf("--out: %w", err) // the archive could not be created
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the archive to write (default stdout)")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var sf storageFlags
	var in string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore trustd's state from a backup archive onto fresh storage",
		Long: `restore writes the state in a trustd backup archive onto trustd's storage,
which must hold no trustd state (a fresh data directory, an empty bucket or
prefix) unless --force, which deletes the state there first, all but its audit
log: the audit records there are kept, and the archive's are added beside them
(one already there is left as it is). Every file is checked against the
archive's manifest (path, size, sha256) before anything is written; a corrupt
or incomplete archive is refused and nothing is written. Restore with trustd
stopped; a new filesystem data directory is made 0700.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.config(cmd)
			if err != nil {
				return err
			}
			if in == "" {
				return errors.New("--in: name the archive to restore (- for stdin)")
			}
			var r io.Reader = cmd.InOrStdin()
			if in != "-" {
				f, err := os.Open(in)
				if err != nil {
					return fmt.Errorf("--in: %w", err)
				}
				defer f.Close()
				r = f
			}
			if cfg.Storage.Driver == "filesystem" {
				// The state holds private keys: a directory made here is private.
				if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
					return fmt.Errorf("data: %w", err)
				}
			}
			d, err := cfg.Storage.Open(cmd.Context(), cfg.Data)
			if err != nil {
				return fmt.Errorf("opening storage: %w", err)
			}
			rep, err := trustd.Restore(cmd.Context(), d, r, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %d files (%d bytes) of trustd's state.\n", rep.Files, rep.Bytes)
			if rep.Kept > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Kept %d audit records of the archive that were there already.\n", rep.Kept)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&in, "in", "", "the archive to restore (- for stdin)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the trustd state already on the target (its audit log is kept)")
	return cmd
}
