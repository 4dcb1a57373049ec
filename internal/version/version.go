// Package version says which build of Signet a binary is: the version and
// commit the Makefile stamps in with -ldflags -X (builds run with
// -buildvcs=false, so Go's own build info says only "(devel)"), printed the
// same way by `--version` and `version` of every command.
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version and Commit are set at link time:
//
//	-ldflags "-X github.com/signet-oss/signet/internal/version.Version=$(git describe --tags --always --dirty)
//	          -X github.com/signet-oss/signet/internal/version.Commit=$(git rev-parse HEAD)"
//
// Unset, Get falls back to what Go recorded (go install of a tagged module
// records its version; a VCS build its revision), else "(devel)" and "unknown".
var (
	Version string
	Commit  string
)

// Info is one binary's build, as `version --output json` prints it.
type Info struct {
	Program   string `json:"program"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
}

// Get returns program's build information.
func Get(program string) Info {
	in := Info{Program: program, Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && in.Commit == "" {
				in.Commit = s.Value
			}
		}
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	return in
}

// String is the one line of --version: "trustctl v1.2.0 (commit 0a1b…, go1.26.0)".
func (in Info) String() string {
	return fmt.Sprintf("%s %s (commit %s, %s)", in.Program, in.Version, in.Commit, in.GoVersion)
}

// Print writes in as its line, or as JSON when format is "json".
func (in Info) Print(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	case "text", "":
		_, err := fmt.Fprintln(w, in.String())
		return err
	}
	return fmt.Errorf("--output: %q is not text or json", format)
}

// Attach gives root a --version flag and a `version` command. output, when
// not nil, is the root's own --output flag; otherwise the version command has
// one of its own.
func Attach(root *cobra.Command, output *string) {
	in := Get(root.Name())
	root.Version = in.Version
	root.SetVersionTemplate(in.String() + "\n")
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return in.Print(cmd.OutOrStdout(), *output)
		},
	}
	if output == nil {
		output = new(string)
		cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text or json")
	}
	root.AddCommand(cmd)
}
