package cluster_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
)

// TestClientTypedErrorsThroughAFollower: the Go client of a follower gets the store's
// typed errors of writes the leader applied through Raft and of reads it made, with
// their fields, as from a single node: the leader's answer carries them, and the
// follower relays it as it is.
func TestClientTypedErrorsThroughAFollower(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	follower := (lead + 1) % len(c.nodes)
	cl, err := client.New(c.url(follower, ""), client.WithLeaderReads())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	unknown := uuid.MustParse("0190c1d2-0000-7000-8000-000000000404")
	if _, err := cl.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"append", func() error {
			_, err := cl.Append(ctx, "Order$1", pmd.AtVersion(4), pmd.EventData{Type: "X"})
			return err
		}, &pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.AtVersion(4), Actual: 0}},
		{"delete", func() error {
			return cl.DeleteStream(ctx, "Order$2", pmd.StreamExists)
		}, &pmd.WrongExpectedVersionError{Stream: "Order$2", Expected: pmd.StreamExists, Actual: -1}},
		{"append of a stored id", func() error {
			_, err := cl.Append(ctx, "Order$2", pmd.Any, pmd.EventData{ID: id, Type: "X"})
			return err
		}, &pmd.DuplicateEventError{ID: id, Stream: "Order$2"}},
		{"link of an unknown event", func() error {
			_, err := cl.Link(ctx, "Audit$1", pmd.Any, unknown)
			return err
		}, &pmd.EventNotFoundError{ID: unknown}},
		{"event by id", func() error {
			_, err := cl.Event(ctx, unknown)
			return err
		}, &pmd.EventNotFoundError{ID: unknown}},
		{"read", func() error {
			_, err := cl.ReadStream(ctx, "Order$404", pmd.ReadOptions{})
			return err
		}, &pmd.StreamNotFoundError{Stream: "Order$404"}},
		{"retention", func() error {
			return cl.SetRetention(ctx, "Order$1", pmd.Retention{TruncateBefore: 10})
		}, &pmd.InvalidArgumentError{Arg: "truncate_before", Reason: `10 is past the end of stream "Order$1", whose next version is 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			target := reflect.New(reflect.TypeOf(tt.want))
			if !errors.As(err, target.Interface()) || !reflect.DeepEqual(target.Elem().Interface(), tt.want) {
				t.Fatalf("got %#v, want errors.As to find %#v", err, tt.want)
			}
			var api *client.Error
			if !errors.As(err, &api) || api.Message != tt.want.Error() {
				t.Fatalf("got %#v, want the daemon's *client.Error saying %q", err, tt.want.Error())
			}
		})
	}
}
