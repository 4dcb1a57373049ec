package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-oss/signet/registry/notify"
)

func newNotificationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "Inspect and requeue the webhook notifications given up on (the dead letters)",
	}
	cmd.AddCommand(newDeadLettersCmd(), newRequeueCmd())
	return cmd
}

func newDeadLettersCmd() *cobra.Command {
	var cf configFlags
	var endpoint, output string
	cmd := &cobra.Command{
		Use:   "dead",
		Short: "List the dead letters of every endpoint, or of --endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(cmd.Flags())
			if err != nil {
				return err
			}
			d, err := cfg.Storage.Open(cmd.Context(), cfg.Data)
			if err != nil {
				return err
			}
			dead, err := notify.DeadLetters(cmd.Context(), d, endpoint)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, dl := range dead {
					if err := enc.Encode(dl); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENDPOINT\tKEY\tFAILED\tEVENTS\tERROR")
			for _, dl := range dead {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", dl.Endpoint, dl.Key, dl.Failed.Format(time.RFC3339), len(dl.Events), dl.Error)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only this endpoint's")
	cmd.Flags().StringVar(&output, "output", "text", "text, or json (one dead letter per line, with its events)")
	return cmd
}

func newRequeueCmd() *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "requeue ENDPOINT KEY...",
		Short: "Queue dead letters again: a running registry delivers them, with their events' ids unchanged",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.load(cmd.Flags())
			if err != nil {
				return err
			}
			d, err := cfg.Storage.Open(cmd.Context(), cfg.Data)
			if err != nil {
				return err
			}
			for _, key := range args[1:] {
				if err := notify.Requeue(cmd.Context(), d, args[0], key); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requeued %s/%s\n", args[0], key)
			}
			return nil
		},
	}
	cf.register(cmd.Flags())
	return cmd
}
