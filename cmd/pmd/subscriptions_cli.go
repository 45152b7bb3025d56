package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/spf13/cobra"
)

// newSubscriptionsCmd is pmd subscriptions [NAME], with pmd subscriptions retry and
// skip for a parked or failing event.
func newSubscriptionsCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "subscriptions [NAME]",
		Short: "list the subscriptions with their position, lag and parked events; with NAME, one of them, its failing event and its parked events",
		Example: `  pmd subscriptions
  pmd subscriptions billing
  pmd subscriptions retry billing 0190c1d2-0000-7000-8000-000000000001`,
		Args: wantArgs(0, 1, "at most a subscription NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := checkName("NAME", args[0]); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				list, err := c.Subscriptions(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					// As GET /v1/subscriptions answers, and as the other lists print.
					return printJSON(stdout, map[string]any{"subscriptions": list})
				}
				printSubscriptions(stdout, list)
				return nil
			}
			d, err := c.Subscription(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return showSubscription(stdout, d, asJSON, g.again())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON for scripts: {"subscriptions": [...]}, or with NAME the subscription`)
	cmd.AddCommand(newEventOperateCmd(g, stdout, "retry"), newEventOperateCmd(g, stdout, "skip"))
	return cmd
}

// showSubscription prints d as pmd subscriptions NAME does; again is what the retry
// command it prints repeats of the command line (globals.again).
func showSubscription(w io.Writer, d client.SubscriptionDetail, asJSON bool, again string) error {
	if asJSON {
		return printJSON(w, d)
	}
	printSubscription(w, d, again)
	return nil
}

func filterText(f client.SubscriptionFilter) string {
	switch {
	case f.Stream != "":
		return "stream " + f.Stream
	case f.Category != "":
		return "category " + f.Category
	default:
		return "types " + strings.Join(f.Types, ",")
	}
}

func printSubscriptions(w io.Writer, list []client.Subscription) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no subscriptions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFOLLOWS\tPOSITION\tLAG\tPARKED\tSTATUS\tLAST ERROR")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", s.Name, filterText(s.Filter), s.Position, optUint(s.Lag), s.Parked, s.Status, redact.Controls(s.LastError))
	}
	tw.Flush()
}

func printSubscription(w io.Writer, d client.SubscriptionDetail, again string) {
	fmt.Fprintf(w, "%s: %s, delivered to %s\n", d.Name, filterText(d.Filter), d.Webhook)
	fmt.Fprintf(w, "position %d, lag %s, %s", d.Position, optUint(d.Lag), d.Status)
	if d.RetryAt != nil {
		fmt.Fprintf(w, ", next attempt at %s", formatTime(*d.RetryAt))
	}
	fmt.Fprintln(w)
	if d.LastError != "" && d.LastErrorAt != nil {
		fmt.Fprintf(w, "last error at %s: %s\n", formatTime(*d.LastErrorAt), redact.Controls(d.LastError))
	}
	fmt.Fprintf(w, "records in stream %s\n", d.Stream)
	// release is the event a retry or skip lets the subscription move on with: the failing
	// one, which holds it back, else the first parked one.
	var release string
	if f := d.FailingEvent; f != nil {
		next := "being attempted again"
		if f.RetryAt != nil {
			next = "next attempt at " + formatTime(*f.RetryAt)
		}
		fmt.Fprintf(w, "\nfailing event (not parked): %s\n", next)
		printStuckEvents(w, []client.ParkedEvent{f.ParkedEvent})
		release = f.ID
	}
	if len(d.ParkedEvents) == 0 {
		fmt.Fprintln(w, "no parked events")
	} else {
		fmt.Fprintln(w, "\nparked events:")
		printStuckEvents(w, d.ParkedEvents)
		if release == "" {
			release = d.ParkedEvents[0].ID
		}
	}
	if release != "" {
		fmt.Fprintf(w, "\nto deliver it again: pmd subscriptions retry%s (or skip to give it up)\n",
			argsAndFlags(again, d.Name, release))
	}
}

// printStuckEvents prints a table of a subscription's failing or parked events.
func printStuckEvents(w io.Writer, events []client.ParkedEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tSTREAM\tPOSITION\tATTEMPTS\tLAST ERROR")
	for _, p := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", p.ID, p.Type, p.Stream, p.Position, p.Attempts, redact.Controls(p.Error))
	}
	tw.Flush()
}

// newEventOperateCmd is pmd subscriptions retry or skip: one operation on one event.
// A subscription may be named retry or skip, and cobra takes pmd subscriptions retry
// for this subcommand: without arguments it shows the subscription of its name, as
// pmd subscriptions NAME would, and is a usage error if there is none.
func newEventOperateCmd(g *globals, stdout io.Writer, verb string) *cobra.Command {
	short, done := "deliver the parked or failing EVENT of subscription NAME again, at once", "queued again"
	if verb == "skip" {
		short, done = "give up the parked or failing EVENT of subscription NAME: it is never delivered, and the subscription moves past it", "skipped"
	}
	const want = "NAME EVENT (pmd subscriptions NAME shows its failing and parked events)"
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " NAME EVENT",
		Short: short + " (needs an admin token with --auth)",
		Long: short + " (needs an admin token with --auth).\n\nWithout NAME EVENT, it shows the subscription named " + verb +
			", if there is one, as pmd subscriptions NAME does.",
		Example: "  pmd subscriptions " + verb + " billing 0190c1d2-0000-7000-8000-000000000001",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return &usageError{fmt.Sprintf("want %s, got %d argument(s)", want, len(args))}
			}
			if len(args) == 2 && asJSON {
				return &usageError{"--json prints the subscription named " + verb + ": it goes without NAME EVENT"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				c, err := g.client()
				if err != nil {
					return err
				}
				d, err := c.Subscription(cmd.Context(), verb)
				if errors.Is(err, client.ErrNotFound) {
					return &usageError{fmt.Sprintf("want %s, got 0 argument(s)", want)}
				}
				if err != nil {
					return err
				}
				return showSubscription(stdout, d, asJSON, g.again())
			}
			if err := checkName("NAME", args[0]); err != nil {
				return err
			}
			if _, err := parseID("EVENT", args[1]); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			op := c.RetryEvent
			if verb == "skip" {
				op = c.SkipEvent
			}
			if err := op(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "event %s of subscription %s: %s\n", args[1], args[0], done)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "without NAME EVENT, print the subscription named "+verb+" as JSON")
	return cmd
}
