package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres starts a throw-away PostgreSQL cluster (see startPgCluster) and returns
// the peer that stores events in it with RailsEventStore's schema. Each Open gets
// its own database. The peer's Close stops the server and removes the cluster.
// It returns an error matching ErrNoPostgres when PostgreSQL is not installed.
//
// The schema is what ruby_event_store-active_record's PostgreSQL migration
// template creates (RES 2.x) with its default data type, binary (bytea): see
// pgSchema. An append is RES's: one row in event_store_events and one in
// event_store_events_in_streams at position expected+1, in one transaction; a
// link is one row in event_store_events_in_streams. The unique index on
// (stream, position) is what turns a concurrent writer into a conflict, as in RES.
func Postgres(ctx context.Context) (Peer, error) {
	c, err := startPgCluster(ctx)
	if err != nil {
		return Peer{}, err
	}
	return Peer{
		Name:       "PostgreSQL (RES schema)",
		Version:    c.version + ", pgx " + moduleVersion("github.com/jackc/pgx/v5"),
		Durability: "fsync=on, synchronous_commit=on, full_page_writes=on (the defaults): each commit waits for its WAL flush; concurrent commits share flushes",
		Open: func(ctx context.Context, dir string, opts OpenOptions) (Store, error) {
			return openPostgres(ctx, c, dir, opts)
		},
		Close: c.stop,
	}, nil
}

// pgSchema is RailsEventStore's PostgreSQL schema: the tables, columns and indexes
// its migration template creates, written out as SQL.
const pgSchema = `
CREATE TABLE IF NOT EXISTS event_store_events (
	id         bigserial PRIMARY KEY,
	event_id   uuid NOT NULL,
	event_type varchar NOT NULL,
	metadata   bytea,
	data       bytea NOT NULL,
	created_at timestamp(6) NOT NULL,
	valid_at   timestamp(6)
);
CREATE UNIQUE INDEX IF NOT EXISTS index_event_store_events_on_event_id ON event_store_events (event_id);
CREATE INDEX IF NOT EXISTS index_event_store_events_on_event_type ON event_store_events (event_type);
CREATE INDEX IF NOT EXISTS index_event_store_events_on_created_at ON event_store_events (created_at);
CREATE INDEX IF NOT EXISTS index_event_store_events_on_valid_at ON event_store_events (valid_at);
CREATE INDEX IF NOT EXISTS index_event_store_events_on_as_of ON event_store_events ((COALESCE(valid_at, created_at)));

CREATE TABLE IF NOT EXISTS event_store_events_in_streams (
	id         bigserial PRIMARY KEY,
	stream     varchar NOT NULL,
	position   integer,
	event_id   uuid NOT NULL REFERENCES event_store_events (event_id),
	created_at timestamp(6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS index_event_store_events_in_streams_on_stream_and_position ON event_store_events_in_streams (stream, position);
CREATE UNIQUE INDEX IF NOT EXISTS index_event_store_events_in_streams_on_stream_and_event_id ON event_store_events_in_streams (stream, event_id);
CREATE INDEX IF NOT EXISTS index_event_store_events_in_streams_on_event_id ON event_store_events_in_streams (event_id);
CREATE INDEX IF NOT EXISTS index_event_store_events_in_streams_on_created_at ON event_store_events_in_streams (created_at);
`

const (
	pgInsertEvent = `INSERT INTO event_store_events (event_id, event_type, metadata, data, created_at) VALUES ($1, $2, NULL, $3, $4)`
	pgInsertInto  = `INSERT INTO event_store_events_in_streams (stream, position, event_id, created_at) VALUES ($1, $2, $3, $4)`
	pgReadStream  = `SELECT e.event_id, e.event_type, e.data FROM event_store_events_in_streams s
		JOIN event_store_events e ON e.event_id = s.event_id WHERE s.stream = $1 ORDER BY s.id`
	pgScanAll = `SELECT event_id, event_type, data FROM event_store_events ORDER BY id`
	pgSize    = `SELECT pg_total_relation_size('event_store_events') + pg_total_relation_size('event_store_events_in_streams')`

	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgPositionIndex       = "index_event_store_events_in_streams_on_stream_and_position"
)

type pgStore struct {
	pool *pgxpool.Pool
}

var pgNameUnsafe = regexp.MustCompile(`[^a-z0-9_]`)

// pgDatabase names the database of a store directory: the same dir, the same database.
func pgDatabase(dir string) string {
	return "peers_" + pgNameUnsafe.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "_")
}

func openPostgres(ctx context.Context, c *pgCluster, dir string, opts OpenOptions) (*pgStore, error) {
	db := pgDatabase(dir)
	admin, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	var exists bool
	err = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists)
	if err == nil && !exists {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	}
	admin.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: create database %s: %w", db, err)
	}
	cfg, err := pgxpool.ParseConfig(c.url(db))
	if err != nil {
		return nil, fmt.Errorf("postgres: pool config: %w", err)
	}
	cfg.MaxConns = 32
	sync := "on"
	if opts.NoSync {
		sync = "off"
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = sync
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool for %s: %w", db, err)
	}
	if _, err := pool.Exec(ctx, pgSchema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: create schema in %s: %w", db, err)
	}
	return &pgStore{pool: pool}, nil
}

func (p *pgStore) Close() error {
	p.pool.Close()
	return nil
}

func (p *pgStore) DiskBytes(ctx context.Context) (int64, error) {
	var n int64
	if err := p.pool.QueryRow(ctx, pgSize).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: table sizes: %w", err)
	}
	return n, nil
}

// write sends the statements as one batch: one round trip, one implicit
// transaction, one commit.
func (p *pgStore) write(ctx context.Context, stream string, expected int64, b *pgx.Batch) error {
	err := p.pool.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == pgUniqueViolation && pgErr.ConstraintName == pgPositionIndex:
		return fmt.Errorf("postgres: stream %q not at version %d: %w", stream, expected, ErrConflict)
	default:
		return fmt.Errorf("postgres: write to %q: %w", stream, err)
	}
}

func (p *pgStore) Append(ctx context.Context, stream string, expected int64, e Event) error {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("postgres: event %s: encode data: %w", e.ID, err)
	}
	now := time.Now().UTC()
	b := &pgx.Batch{}
	b.Queue(pgInsertEvent, e.ID, e.Type, data, now)
	b.Queue(pgInsertInto, stream, expected+1, e.ID, now)
	return p.write(ctx, stream, expected, b)
}

func (p *pgStore) Link(ctx context.Context, stream string, expected int64, id uuid.UUID) error {
	b := &pgx.Batch{}
	b.Queue(pgInsertInto, stream, expected+1, id, time.Now().UTC())
	err := p.write(ctx, stream, expected, b)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgForeignKeyViolation {
		return fmt.Errorf("postgres: link %s into %q: %w", id, stream, ErrUnknownEvent)
	}
	return err
}

func scanEvent(rows pgx.Rows) (Event, error) {
	var (
		e    Event
		data []byte
	)
	if err := rows.Scan(&e.ID, &e.Type, &data); err != nil {
		return Event{}, err
	}
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return Event{}, fmt.Errorf("event %s: data: %w", e.ID, err)
	}
	return e, nil
}

func (p *pgStore) ReadStream(ctx context.Context, stream string) ([]Event, error) {
	rows, err := p.pool.Query(ctx, pgReadStream, stream)
	if err != nil {
		return nil, fmt.Errorf("postgres: read %q: %w", stream, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: read %q: %w", stream, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read %q: %w", stream, err)
	}
	return out, nil
}

func (p *pgStore) ScanAll(ctx context.Context, fn func(Event) error) error {
	rows, err := p.pool.Query(ctx, pgScanAll)
	if err != nil {
		return fmt.Errorf("postgres: scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("postgres: scan: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: scan: %w", err)
	}
	return nil
}
