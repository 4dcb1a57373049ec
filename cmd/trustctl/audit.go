package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/client"
)

func newAuditCmd(g *globals) *cobra.Command {
	var q audit.Query
	var since, until string
	var asJSONL bool
	cmd := &cobra.Command{
		Use:   "audit [--org ORG] [--repo REPO] [--actor NAME] [--action ACTION] [--since 24h] [--until TIME] [--limit N] [--jsonl]",
		Short: "Show the audit log: publishes, keys, delegations, grants, tokens and denied pushes",
		Long: `audit reads trustd's audit log (publishes, key and delegation changes, orgs,
members, grants, robot and refresh tokens) and the registry's (pushes its gate
denied), merges them in time order, and prints the newest --limit records of
the range --since to --until, oldest first. --output json prints them as one
JSON array; --jsonl streams one record per line.

Admins read everything; an organisation owner reads the records of the
organisations they own, and gets no registry records (the registry's log is for
admins).`,
		Example: `  trustctl audit --since 24h
  trustctl audit --org acme --action 'token.*'
  trustctl audit --limit 10
  trustctl audit --repo 'acme/**' --since 2026-01-01T00:00:00Z --jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			var err error
			if q.Since, err = audit.ParseTime(since, now); err != nil {
				return fmt.Errorf("--since: %v", err)
			}
			if q.Until, err = audit.ParseTime(until, now); err != nil {
				return fmt.Errorf("--until: %v", err)
			}
			if q.Limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", q.Limit)
			}
			limit := q.Limit
			// Validate checks one page's limit; more are read page by page.
			q.Limit = min(limit, audit.MaxLimit)
			if err := q.Validate(); err != nil {
				return err
			}
			q.Limit = limit
			td, err := g.trustd(ctx)
			if err != nil {
				return err
			}
			trusted, err := td.Audit(ctx, q, true)
			if err != nil {
				return err
			}
			host := g.registry
			if host == "" {
				if home, err := client.LoadHome(); err == nil {
					host = home.Signet().Registry
				}
			}
			var registry []audit.Record
			if host != "" {
				login, err := client.LookupRegistryLogin(ctx, host)
				if err != nil {
					return err
				}
				registry, err = client.RegistryAudit(ctx, host, login, &client.TokenClient{}, q, true)
				if errors.Is(err, client.ErrAuditDenied) {
					fmt.Fprintf(os.Stderr, "trustctl: not showing %s's own records (denied pushes): %v\n", host, err)
				} else if err != nil {
					return err
				}
			}
			recs := client.MergeAudit(limit, true, trusted, registry)
			if asJSONL {
				enc := json.NewEncoder(os.Stdout)
				for _, r := range recs {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			if g.output == "json" {
				if recs == nil {
					recs = []audit.Record{}
				}
				return printJSON(recs)
			}
			if len(recs) == 0 {
				fmt.Println("No audit records match.")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tSOURCE\tACTOR\tACTION\tWHAT\tDETAIL")
			for _, r := range recs {
				// Records hold what clients sent (names, tags, reasons): never
				// let one drive the terminal or break the columns.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339),
					printable(r.Source), printable(r.Actor), printable(r.Action), printable(what(r)), printable(detail(r)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(recs) == limit {
				fmt.Fprintf(os.Stderr, "trustctl: showing the newest %d records; narrow the filters, or pass --until %s for the ones before\n",
					limit, recs[0].Time.Format(time.RFC3339Nano))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&q.Orgs, "org", nil, "only records about this organisation (repeatable)")
	f.StringVar(&q.Repository, "repo", "", "only records about this repository, or a pattern: * is one name component, ** any number")
	f.StringVar(&q.Actor, "actor", "", "only records of this account or robot (org+name)")
	f.StringVar(&q.Action, "action", "", "only this action (target.publish, key.rotate, grant.create, token.revoke, admission.deny, ...) or a pattern such as 'token.*'")
	f.StringVar(&since, "since", "24h", "from this time on: RFC 3339, or a duration back from now")
	f.StringVar(&until, "until", "", "before this time: RFC 3339, or a duration back from now (default: now)")
	f.IntVar(&q.Limit, "limit", audit.DefaultLimit, "show the newest this many records of the range")
	f.BoolVar(&asJSONL, "jsonl", false, "stream JSON lines, one record each (--output json prints one JSON array)")
	f.BoolVar(&asJSONL, "json", false, "the same as --jsonl")
	f.MarkDeprecated("json", "use --jsonl (JSON lines), or --output json (one JSON array)")
	return cmd
}

// what names what a record is about.
func what(r audit.Record) string {
	var s string
	switch {
	case r.Repository != "":
		s = r.Repository
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		if r.Digest != "" {
			s += "@" + shortDigest(r.Digest)
		}
	case r.Role != "":
		s = r.Role
	case r.Subject != "":
		s = r.Subject
	case r.Org != "":
		s = r.Org
	default:
		s = "-"
	}
	// A role version is named by what it covers: "acme/app v3", not its
	// hashed role name.
	if r.Role != "" && r.Version > 0 && (r.Repository == "" || strings.HasPrefix(r.Action, "role.")) {
		s += " v" + strconv.FormatInt(r.Version, 10)
	}
	if r.Subject != "" && s != r.Subject {
		s += " for " + r.Subject
	}
	return s
}

// detail says how: the record's detail, keys and, for a denial, the reason.
func detail(r audit.Record) string {
	var parts []string
	if len(r.KeyIDs) > 0 {
		ids := make([]string, len(r.KeyIDs))
		for i, id := range r.KeyIDs {
			ids[i] = id[:min(len(id), 12)]
		}
		parts = append(parts, "keys "+strings.Join(ids, ","))
	}
	if r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// printable escapes what a terminal would not print as text: control
// characters (escape sequences, tabs, newlines), format characters such as
// bidirectional overrides, and bytes that are not UTF-8, as Go escapes them
// (\x1b, \u202e).
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !unicode.IsPrint(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}
