package main

import (
	"context"
	"fmt"

	"github.com/pmd-dev/pmd/client"
)

// readWholeProcess reads process id of manager name with every command it issued and
// every delivery record of each: the daemon answers a page of them (commands_next,
// attempts_next: docs/api.md), and the rest is read page by page, each with one event,
// the events being those of the first answer. A daemon older than the pages answers
// every command at once, and nothing more is read.
func readWholeProcess(ctx context.Context, c *client.Client, name, id string) (client.Process, error) {
	p, err := c.Process(ctx, name, id)
	if err != nil {
		return client.Process{}, err
	}
	if err := readRestOfAttempts(ctx, c, name, id, p.Commands); err != nil {
		return client.Process{}, err
	}
	for p.CommandsNext != nil {
		from := *p.CommandsNext
		page, err := c.ReadProcess(ctx, name, id, client.ProcessOptions{Limit: 1, CommandsFrom: from})
		if err != nil {
			return client.Process{}, fmt.Errorf("reading the commands of process %s %s from version %d: %w", name, id, from, err)
		}
		if page.CommandsNext != nil && *page.CommandsNext <= from {
			return client.Process{}, fmt.Errorf("reading the commands of process %s %s: the daemon answered commands_next %d after commands_from %d, not past it",
				name, id, *page.CommandsNext, from)
		}
		if err := readRestOfAttempts(ctx, c, name, id, page.Commands); err != nil {
			return client.Process{}, err
		}
		p.Commands = append(p.Commands, page.Commands...)
		p.CommandsNext = page.CommandsNext
	}
	return p, nil
}

// readRestOfAttempts reads the delivery records of each of cmds past its AttemptsNext,
// page by page, appending them to its Attempts.
func readRestOfAttempts(ctx context.Context, c *client.Client, name, id string, cmds []client.Command) error {
	for i := range cmds {
		cmd := &cmds[i]
		for cmd.AttemptsNext != nil {
			from := *cmd.AttemptsNext
			page, err := c.ReadProcess(ctx, name, id, client.ProcessOptions{Limit: 1, CommandsFrom: cmd.Version, CommandsLimit: 1, AttemptsFrom: from})
			if err != nil {
				return fmt.Errorf("reading the delivery records of command %s of process %s %s from version %d: %w", cmd.ID, name, id, from, err)
			}
			if len(page.Commands) == 0 || page.Commands[0].ID != cmd.ID {
				return fmt.Errorf("reading the delivery records of command %s of process %s %s: the daemon's page at commands_from %d does not start with it",
					cmd.ID, name, id, cmd.Version)
			}
			more := page.Commands[0]
			if more.AttemptsNext != nil && *more.AttemptsNext <= from {
				return fmt.Errorf("reading the delivery records of command %s of process %s %s: the daemon answered attempts_next %d after attempts_from %d, not past it",
					cmd.ID, name, id, *more.AttemptsNext, from)
			}
			cmd.Attempts = append(cmd.Attempts, more.Attempts...)
			cmd.AttemptsNext = more.AttemptsNext
		}
	}
	return nil
}
