package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is NATS JetStream used as an event store, the way its documentation
// describes optimistic concurrency:
//
//   - the server is embedded in the benchmark process (no network listener; the
//     client connects in-process), JetStream on, file storage, sync_interval
//     "always" (SyncAlways: the file store syncs every write before acknowledging);
//   - one JetStream stream "EVENTS" with subjects "ev.>", one subject per event
//     stream ("ev.Order$42"), direct get allowed;
//   - an append publishes one message with Nats-Msg-Id set to the event id
//     (duplicate detection) and Nats-Expected-Last-Subject-Sequence set to the
//     subject's last sequence (0 for a new stream), which the server checks;
//   - a link is a second message, on the target subject, with no body and a
//     Pmd-Link header holding the linked message's stream sequence.
//
// A publish carries a subject sequence, not a version, so the adapter keeps, per
// stream, its last version and sequence, as an application keeps them from its last
// read; it keeps each event's sequence too, as a consumer learns it on delivery.
// Reading a stream walks the subject with direct gets ("next message on this
// subject from sequence n") and resolves each link with one more direct get.
func NATS() Peer {
	return Peer{
		Name:       "NATS JetStream",
		Version:    "nats-server v" + server.VERSION + ", nats.go " + moduleVersion("github.com/nats-io/nats.go"),
		Durability: "embedded server, file storage, sync_interval always (fsync before every ack), expected-last-subject-sequence per publish",
		Open: func(ctx context.Context, dir string, opts OpenOptions) (Store, error) {
			return openNATS(ctx, dir, opts)
		},
	}
}

const (
	natsStream     = "EVENTS"
	natsSubject    = "ev."
	natsTypeHeader = "Pmd-Type"
	natsLinkHeader = "Pmd-Link"
)

type natsStore struct {
	dir string
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	str jetstream.Stream

	mu    sync.Mutex
	heads map[string]natsHead
	seqs  map[uuid.UUID]uint64
}

type natsHead struct {
	version int64
	seq     uint64
}

func openNATS(ctx context.Context, dir string, opts OpenOptions) (*natsStore, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "pmd-peers",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: !opts.NoSync,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: new server in %s: %w", dir, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: server in %s not ready after 30s", dir)
	}
	s := &natsStore{dir: dir, srv: srv, heads: map[string]natsHead{}, seqs: map[uuid.UUID]uint64{}}
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *natsStore) connect(ctx context.Context) error {
	nc, err := nats.Connect("", nats.InProcessServer(s.srv))
	if err != nil {
		return fmt.Errorf("nats: connect in-process: %w", err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	s.js = js
	str, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        natsStream,
		Subjects:    []string{natsSubject + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("nats: create stream %s: %w", natsStream, err)
	}
	s.str = str
	return nil
}

func (s *natsStore) Close() error {
	if s.nc != nil {
		s.nc.Close()
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	return nil
}

func (s *natsStore) DiskBytes(context.Context) (int64, error) { return dirSize(s.dir) }

// subject maps a stream to its subject, refusing names a subject token cannot hold.
func natsSubjectOf(stream string) (string, error) {
	if stream == "" || strings.ContainsAny(stream, ".*> \t\r\n") {
		return "", fmt.Errorf("nats: stream name %q cannot be a subject token", stream)
	}
	return natsSubject + stream, nil
}

// head returns the subject sequence a publish at expected must name.
func (s *natsStore) head(stream string, expected int64) (uint64, error) {
	if expected == NoStream {
		return 0, nil
	}
	s.mu.Lock()
	h, ok := s.heads[stream]
	s.mu.Unlock()
	if !ok || h.version != expected {
		actual := NoStream
		if ok {
			actual = h.version
		}
		return 0, fmt.Errorf("nats: stream %q at version %d, expected %d: %w", stream, actual, expected, ErrConflict)
	}
	return h.seq, nil
}

func (s *natsStore) publish(ctx context.Context, stream string, expected int64, msg *nats.Msg) (uint64, error) {
	subject, err := natsSubjectOf(stream)
	if err != nil {
		return 0, err
	}
	last, err := s.head(stream, expected)
	if err != nil {
		return 0, err
	}
	msg.Subject = subject
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, fmt.Errorf("nats: stream %q: %v: %w", stream, err, ErrConflict)
		}
		return 0, fmt.Errorf("nats: publish to %q: %w", stream, err)
	}
	if ack.Duplicate {
		return 0, fmt.Errorf("nats: publish to %q: message %s is a duplicate", stream, msg.Header.Get(jetstream.MsgIDHeader))
	}
	s.mu.Lock()
	s.heads[stream] = natsHead{version: expected + 1, seq: ack.Sequence}
	s.mu.Unlock()
	return ack.Sequence, nil
}

func (s *natsStore) Append(ctx context.Context, stream string, expected int64, e Event) error {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("nats: event %s: encode data: %w", e.ID, err)
	}
	msg := &nats.Msg{Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID.String())
	msg.Header.Set(natsTypeHeader, e.Type)
	seq, err := s.publish(ctx, stream, expected, msg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.seqs[e.ID] = seq
	s.mu.Unlock()
	return nil
}

func (s *natsStore) Link(ctx context.Context, stream string, expected int64, id uuid.UUID) error {
	s.mu.Lock()
	seq, ok := s.seqs[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("nats: link %s into %q: %w", id, stream, ErrUnknownEvent)
	}
	msg := &nats.Msg{Header: nats.Header{}}
	// The message id makes a retried link a duplicate, and only that.
	msg.Header.Set(jetstream.MsgIDHeader, stream+"/"+id.String())
	msg.Header.Set(natsLinkHeader, strconv.FormatUint(seq, 10))
	_, err := s.publish(ctx, stream, expected, msg)
	return err
}

func (s *natsStore) ReadStream(ctx context.Context, stream string) ([]Event, error) {
	subject, err := natsSubjectOf(stream)
	if err != nil {
		return nil, err
	}
	var out []Event
	for seq := uint64(1); ; {
		m, err := s.str.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("nats: read %q from %d: %w", stream, seq, err)
		}
		seq = m.Sequence + 1
		if link := m.Header.Get(natsLinkHeader); link != "" {
			target, err := strconv.ParseUint(link, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("nats: read %q: message %d: bad %s header %q", stream, m.Sequence, natsLinkHeader, link)
			}
			if m, err = s.str.GetMsg(ctx, target); err != nil {
				return nil, fmt.Errorf("nats: read %q: linked message %d: %w", stream, target, err)
			}
		}
		e, err := natsEvent(m.Header, m.Data)
		if err != nil {
			return nil, fmt.Errorf("nats: read %q: message %d: %w", stream, m.Sequence, err)
		}
		out = append(out, e)
	}
}

func natsEvent(h nats.Header, data []byte) (Event, error) {
	id, err := uuid.Parse(h.Get(jetstream.MsgIDHeader))
	if err != nil {
		return Event{}, fmt.Errorf("event id: %w", err)
	}
	e := Event{ID: id, Type: h.Get(natsTypeHeader)}
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return Event{}, fmt.Errorf("event %s: data: %w", id, err)
	}
	return e, nil
}

func (s *natsStore) ScanAll(ctx context.Context, fn func(Event) error) error {
	info, err := s.str.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats: stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.js.OrderedConsumer(ctx, natsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("nats: ordered consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("nats: consume: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("nats: scan: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("nats: scan: %w", err)
		}
		if m.Headers().Get(natsLinkHeader) == "" {
			e, err := natsEvent(m.Headers(), m.Data())
			if err != nil {
				return fmt.Errorf("nats: scan: message %d: %w", meta.Sequence.Stream, err)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}
