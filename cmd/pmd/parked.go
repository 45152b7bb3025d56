package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/spf13/cobra"
)

func newParkedCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var limit int
	var from uint64
	cmd := &cobra.Command{
		Use:   "parked NAME",
		Short: "list the commands of process manager NAME parked after max_attempts failed deliveries, oldest first",
		Example: `  pmd parked Shipping
  pmd parked Shipping --json
  pmd parked Shipping --from 1207`,
		Args: wantArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkName("NAME", args[0]); err != nil {
				return err
			}
			if limit < 1 {
				return &usageError{fmt.Sprintf("--limit must be ≥ 1, got %d", limit)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := readParked(cmd.Context(), c, args[0], from, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, list)
			}
			printParked(stdout, g, args[0], limit, list)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().IntVar(&limit, "limit", defaultLimit, "commands to list at most")
	cmd.Flags().Uint64Var(&from, "from", 0, "list the commands whose records are at this position or after it (the --from the list before names)")
	return cmd
}

// readParked lists up to limit parked commands of manager name from position from on,
// reading page after page while the daemon's bound in bytes cut one short of limit.
func readParked(ctx context.Context, c *client.Client, name string, from uint64, limit int) (client.ParkedList, error) {
	list, err := c.ReadParked(ctx, name, client.ParkedOptions{From: from, Limit: limit})
	if err != nil {
		return client.ParkedList{}, err
	}
	for list.Next != nil && len(list.Parked) < limit {
		from := *list.Next
		page, err := c.ReadParked(ctx, name, client.ParkedOptions{From: from, Limit: limit - len(list.Parked)})
		if err != nil {
			return client.ParkedList{}, fmt.Errorf("reading the parked commands of %s from position %d: %w", name, from, err)
		}
		if page.Next != nil && *page.Next <= from {
			return client.ParkedList{}, fmt.Errorf("reading the parked commands of %s: the daemon answered next %d after from %d, not past it", name, *page.Next, from)
		}
		list.Parked = append(list.Parked, page.Parked...)
		list.Next, list.Total = page.Next, page.Total
	}
	return list, nil
}

// printParked prints the parked commands as a table, the command that lists the next
// ones when there are more, and the retry command, for the daemon g reached, that
// delivers the first again.
func printParked(w io.Writer, g *globals, name string, limit int, list client.ParkedList) {
	if len(list.Parked) == 0 {
		if list.Total == 0 {
			fmt.Fprintf(w, "no parked commands in %s\n", name)
		} else { // --from past the last of them
			fmt.Fprintf(w, "no parked commands in %s at that position or after it (%d in all)\n", name, list.Total)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tTYPE\tCOMMAND\tATTEMPTS\tRECEIVER\tLAST ERROR")
	for _, p := range list.Parked {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", p.ProcessID, p.Type, p.ID, p.Attempts, p.Receiver, redact.Controls(p.Error))
	}
	tw.Flush()
	if list.Next != nil {
		fmt.Fprintf(w, "(%d of %d; the next: pmd parked%s)\n", len(list.Parked), list.Total,
			argsAndFlags(g.again()+limitFlag(limit)+fmt.Sprintf(" --from %d", *list.Next), name))
	}
	p := list.Parked[0]
	fmt.Fprintf(w, "\nto deliver one again: pmd retry%s (or skip to give it up)\n",
		argsAndFlags(g.again(), name, p.ProcessID, p.ID))
}

// newOperateCmd is pmd retry or pmd skip: one operation on one command of a process.
func newOperateCmd(g *globals, stdout io.Writer, verb string) *cobra.Command {
	short, done := "deliver the parked or failing command COMMAND of process NAME ID again, at once", "queued again"
	if verb == "skip" {
		short, done = "give up the parked or failing command COMMAND of process NAME ID: it is never delivered", "skipped"
	}
	return &cobra.Command{
		Use:     verb + " NAME ID COMMAND",
		Short:   short + " (needs an admin token with --auth)",
		Example: "  pmd " + verb + " Shipping 42 0190c1d2-0000-7000-8000-000000000001",
		Args:    wantArgs(3, 3, "NAME ID COMMAND (pmd parked NAME lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkProcess(args[0], args[1], true); err != nil {
				return err
			}
			if _, err := parseID("COMMAND", args[2]); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			op := c.Retry
			if verb == "skip" {
				op = c.Skip
			}
			if err := op(cmd.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "command %s of %s %s: %s\n", args[2], args[0], args[1], done)
			return err
		},
	}
}
