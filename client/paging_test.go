package client_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// askedProcesses is pagedProcesses that keeps the queries the daemon passed on.
type askedProcesses struct {
	pagedProcesses
	process *server.ProcessQuery
	parked  *server.ParkedQuery
}

func (p askedProcesses) ProcessPage(ctx context.Context, name, id string, q server.ProcessQuery) (server.Process, error) {
	*p.process = q
	return p.pagedProcesses.ProcessPage(ctx, name, id, q)
}

func (p askedProcesses) Parked(ctx context.Context, name string, q server.ParkedQuery) (server.ParkedPage, error) {
	*p.parked = q
	return p.pagedProcesses.Parked(ctx, name, q)
}

// TestPagingOptionsReachTheDaemon: ReadProcess sends the page of commands and of their
// delivery records asked for, ReadParked the page of parked commands, and both refuse a
// negative value without sending it.
func TestPagingOptionsReachTheDaemon(t *testing.T) {
	f := askedProcesses{process: &server.ProcessQuery{}, parked: &server.ParkedQuery{}}
	d := startDaemon(t, server.Options{Processes: f}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	if _, err := c.ReadProcess(ctx, "CateringMatch", "long", client.ProcessOptions{CommandsFrom: 5, CommandsLimit: 3, AttemptsFrom: 7, AttemptsLimit: 2}); err != nil {
		t.Fatal(err)
	}
	if q := *f.process; q.CommandsFrom != 5 || q.CommandsLimit != 3 || q.AttemptsFrom != 7 || q.AttemptsLimit != 2 {
		t.Fatalf("the daemon was asked for %+v", q)
	}
	if _, err := c.ReadParked(ctx, "CateringMatch", client.ParkedOptions{From: 20, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if q := *f.parked; q.From != 20 || q.Limit != 1 {
		t.Fatalf("the daemon was asked for %+v", q)
	}
	for _, o := range []client.ProcessOptions{{CommandsFrom: -1}, {CommandsLimit: -1}, {AttemptsFrom: -1}, {AttemptsLimit: -1}} {
		if _, err := c.ReadProcess(ctx, "CateringMatch", "long", o); err == nil {
			t.Errorf("ReadProcess with %+v sent it", o)
		}
	}
}
