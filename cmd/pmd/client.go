package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// client talks to a running daemon.
type client struct {
	base string // http://host:port
	http *http.Client
	json bool // print responses as JSON
}

func clientFlags(fs *flag.FlagSet) (addr *string, asJSON *bool) {
	addr = fs.String("addr", envString("PMD_ADDR", "127.0.0.1:7070"), "address of the daemon (env PMD_ADDR)")
	asJSON = fs.Bool("json", false, "print JSON for scripts")
	return addr, asJSON
}

func newClient(addr string, asJSON bool) *client {
	base := strings.TrimSuffix(addr, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	return &client{base: base, http: &http.Client{}, json: asJSON}
}

// apiError is an error answered by the daemon.
type apiError struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// do sends a request and decodes a JSON answer into out (if not nil), returning the raw
// body too.
func (c *client) do(ctx context.Context, method, path string, body any, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &exitError{exitTrouble, fmt.Errorf("cannot reach pmd at %s (is `pmd serve` running?): %w", c.base, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &exitError{exitTrouble, fmt.Errorf("read the answer of %s: %w", c.base, err)}
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Code, e.Message = resp.Status, strings.TrimSpace(string(raw))
		}
		return raw, e
	}
	if out != nil && len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return raw, fmt.Errorf("the daemon answered something that is not JSON: %w", err)
		}
	}
	return raw, nil
}

// expectedFlag reads --expected the way the API spells expected versions.
func expectedValue(v string) (any, error) {
	switch v {
	case "", "any":
		return "any", nil
	case "no_stream", "stream_exists":
		return v, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -1 {
		return nil, &usageError{fmt.Sprintf("--expected must be any, no_stream, stream_exists or an integer ≥ -1, got %q", v)}
	}
	return n, nil
}

// event is an event as the API returns it.
type event struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	Metadata  map[string]any `json:"metadata"`
	Timestamp string         `json:"timestamp"`
	Position  uint64         `json:"position"`
	Stream    string         `json:"stream"`
	Version   *uint64        `json:"version"`
	Link      bool           `json:"link"`
}

func appendCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("append", stderr)
	addr, asJSON := clientFlags(fs)
	expected := fs.String("expected", "any", "expected version: any, no_stream, stream_exists or N")
	id := fs.String("id", "", "event id (a UUID); default: the store assigns one")
	meta := fs.String("metadata", "", "metadata as a JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 3 {
		return &usageError{"want STREAM TYPE JSON, e.g. pmd append 'Order$42' OrderPlaced '{\"order_id\":\"42\"}'"}
	}
	stream, typ, data := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	ev := map[string]any{"type": typ, "data": json.RawMessage(data)}
	if !json.Valid([]byte(data)) {
		return &usageError{fmt.Sprintf("the event data %q is not JSON", data)}
	}
	if *meta != "" {
		if !json.Valid([]byte(*meta)) {
			return &usageError{fmt.Sprintf("--metadata %q is not JSON", *meta)}
		}
		ev["metadata"] = json.RawMessage(*meta)
	}
	if *id != "" {
		ev["id"] = *id
	}
	exp, err := expectedValue(*expected)
	if err != nil {
		return err
	}
	c := newClient(*addr, *asJSON)
	var res struct {
		FirstPosition uint64 `json:"first_position"`
		Version       uint64 `json:"version"`
	}
	raw, err := c.do(ctx, "POST", "/v1/streams/"+url.PathEscape(stream), map[string]any{"expected_version": exp, "events": []any{ev}}, &res)
	if err != nil {
		return err
	}
	if c.json {
		_, err = stdout.Write(raw)
		return err
	}
	fmt.Fprintf(stdout, "appended %s to %s at version %d (position %d)\n", typ, stream, res.Version, res.FirstPosition)
	return nil
}

func linkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("link", stderr)
	addr, asJSON := clientFlags(fs)
	expected := fs.String("expected", "any", "expected version: any, no_stream, stream_exists or N")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return &usageError{"want STREAM ID..., e.g. pmd link 'CateringMatch$42' 0190c1d2-0000-7000-8000-000000000001"}
	}
	exp, err := expectedValue(*expected)
	if err != nil {
		return err
	}
	c := newClient(*addr, *asJSON)
	var res struct {
		Version uint64 `json:"version"`
	}
	raw, err := c.do(ctx, "POST", "/v1/streams/"+url.PathEscape(fs.Arg(0))+"/links", map[string]any{"expected_version": exp, "event_ids": fs.Args()[1:]}, &res)
	if err != nil {
		return err
	}
	if c.json {
		_, err = stdout.Write(raw)
		return err
	}
	fmt.Fprintf(stdout, "linked %d event(s) into %s, now at version %d\n", fs.NArg()-1, fs.Arg(0), res.Version)
	return nil
}

func readCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("read", stderr)
	addr, asJSON := clientFlags(fs)
	from := fs.String("from", "", "first version (a position for $all)")
	backward := fs.Bool("backward", false, "newest first")
	limit := fs.Int("limit", 100, "events per page")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"want STREAM (or $all)"}
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *from != "" {
		q.Set("from", *from)
	}
	if *backward {
		q.Set("direction", "backward")
	}
	stream := fs.Arg(0)
	path := "/v1/streams/" + url.PathEscape(stream) + "?" + q.Encode()
	c := newClient(*addr, *asJSON)
	var page struct {
		Events []event      `json:"events"`
		Next   *json.Number `json:"next"`
	}
	raw, err := c.do(ctx, "GET", path, nil, &page)
	if err != nil {
		return err
	}
	if c.json {
		_, err = stdout.Write(raw)
		return err
	}
	printEvents(stdout, page.Events, stream)
	if page.Next != nil {
		fmt.Fprintf(stdout, "… more: pmd read --from %s %s\n", page.Next, shellQuote(stream))
	}
	return nil
}

// printEvents prints events as a table for people.
func printEvents(w io.Writer, events []event, stream string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tPOSITION\tTYPE\tTIME\tFROM\tDATA")
	for _, e := range events {
		v := "-"
		if e.Version != nil {
			v = strconv.FormatUint(*e.Version, 10)
		}
		from := ""
		if e.Link || e.Stream != stream {
			from = e.Stream
			if e.Link {
				from = "↪ " + from
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v, e.Position, e.Type, shortTime(e.Timestamp), from, compact(e.Data, 60))
	}
	tw.Flush()
	if len(events) == 0 {
		fmt.Fprintln(w, "(no events)")
	}
}

func shortTime(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	return t.Format("2006-01-02 15:04:05.000")
}

// compact renders v as one line of JSON, cut at max runes.
func compact(v any, max int) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := []rune(string(b))
	if len(s) > max {
		return string(s[:max-1]) + "…"
	}
	return string(s)
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, "$ '\"\\`!*?&;|<>(){}") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

func tailCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tail", stderr)
	addr, asJSON := clientFlags(fs)
	types := fs.String("types", "", "only these event types, comma-separated")
	stream := fs.String("stream", "", "follow one stream instead of the global log")
	from := fs.String("from", "", "start at this position (version with --stream); default: only new events")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	c := newClient(*addr, *asJSON)
	q := url.Values{}
	if *types != "" {
		q.Set("types", *types)
	}
	if *stream != "" {
		q.Set("stream", *stream)
	}
	lastID := ""
	if *from != "" {
		q.Set("from", *from)
	} else {
		// Only new events: start after the current end.
		if *stream == "" {
			last, err := c.lastPosition(ctx)
			if err != nil {
				return err
			}
			q.Set("from", strconv.FormatUint(last+1, 10))
		} else {
			var info struct {
				Streams []struct {
					Name    string `json:"name"`
					Version int64  `json:"version"`
				} `json:"streams"`
			}
			if _, err := c.do(ctx, "GET", "/v1/streams?limit=1&prefix="+url.QueryEscape(*stream), nil, &info); err != nil {
				return err
			}
			if len(info.Streams) == 1 && info.Streams[0].Name == *stream {
				q.Set("from", strconv.FormatInt(info.Streams[0].Version+1, 10))
			}
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !c.json {
		fmt.Fprintf(stderr, "following %s at %s (Ctrl-C to stop)\n", cmp.Or(*stream, "$all"), c.base)
	}
	// Follow, reconnecting with Last-Event-ID when the connection drops, so that a
	// daemon restart loses nothing.
	for {
		err := c.follow(ctx, "/v1/subscribe?"+q.Encode(), &lastID, func(data []byte) error {
			if c.json {
				_, err := fmt.Fprintf(stdout, "%s\n", data)
				return err
			}
			var e event
			if err := json.Unmarshal(data, &e); err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Position, shortTime(e.Timestamp), e.Stream, e.Type, compact(e.Data, 60))
			return tw.Flush()
		})
		if ctx.Err() != nil {
			return nil // stopped by the caller
		}
		var api *apiError
		if errors.As(err, &api) {
			return err
		}
		fmt.Fprintf(stderr, "connection lost (%v); reconnecting\n", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
}

// follow reads one SSE connection, calling fn with each event's data and keeping
// lastID up to date.
func (c *client) follow(ctx context.Context, path string, lastID *string, fn func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &apiError{Status: resp.StatusCode}
		raw, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Code, e.Message = resp.Status, strings.TrimSpace(string(raw))
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var id string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				if err := fn(data); err != nil {
					return err
				}
				if id != "" {
					*lastID = id
				}
			}
			id, data = "", nil
		case bytes.HasPrefix(line, []byte("id: ")):
			id = string(line[4:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append([]byte(nil), line[6:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func processCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("process", stderr)
	addr, asJSON := clientFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	c := newClient(*addr, *asJSON)
	if fs.NArg() == 0 {
		var list struct {
			Processes []struct {
				Name      string   `json:"name"`
				Handles   []string `json:"handles"`
				Open      int      `json:"open"`
				Completed int      `json:"completed"`
				Expired   int      `json:"expired"`
			} `json:"processes"`
		}
		raw, err := c.do(ctx, "GET", "/v1/processes", nil, &list)
		if err != nil || c.json {
			if err == nil {
				_, err = stdout.Write(raw)
			}
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tOPEN\tCOMPLETED\tEXPIRED\tHANDLES")
		for _, p := range list.Processes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", p.Name, p.Open, p.Completed, p.Expired, strings.Join(p.Handles, ", "))
		}
		return tw.Flush()
	}
	if fs.NArg() != 2 {
		return &usageError{"want NAME ID (or nothing, to list the process managers)"}
	}
	var p struct {
		Manager  string  `json:"manager"`
		ID       string  `json:"id"`
		Stream   string  `json:"stream"`
		Status   string  `json:"status"`
		State    any     `json:"state"`
		Events   []event `json:"events"`
		Commands []struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			Delivered bool   `json:"delivered"`
			Attempts  []struct {
				At    time.Time `json:"at"`
				Error string    `json:"error"`
			} `json:"attempts"`
		} `json:"commands"`
		Deadlines []struct {
			Due   time.Time `json:"due"`
			Issue string    `json:"issue"`
		} `json:"deadlines"`
	}
	raw, err := c.do(ctx, "GET", "/v1/processes/"+url.PathEscape(fs.Arg(0))+"/"+url.PathEscape(fs.Arg(1)), nil, &p)
	if err != nil || c.json {
		if err == nil {
			_, err = stdout.Write(raw)
		}
		return err
	}
	fmt.Fprintf(stdout, "process %s %s: %s\nstream: %s\nstate:  %s\n\n", p.Manager, p.ID, p.Status, p.Stream, compact(p.State, 200))
	printEvents(stdout, p.Events, p.Stream)
	if len(p.Commands) > 0 {
		fmt.Fprintln(stdout, "\ncommands:")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tID\tDELIVERED\tATTEMPTS\tLAST ERROR")
		for _, cmd := range p.Commands {
			last := ""
			if n := len(cmd.Attempts); n > 0 {
				last = cmd.Attempts[n-1].Error
			}
			fmt.Fprintf(tw, "  %s\t%s\t%v\t%d\t%s\n", cmd.Type, cmd.ID, cmd.Delivered, len(cmd.Attempts), last)
		}
		tw.Flush()
	}
	for _, d := range p.Deadlines {
		fmt.Fprintf(stdout, "deadline: %s at %s\n", d.Issue, d.Due.Format(time.RFC3339))
	}
	return nil
}

// lastPosition asks the daemon for the position of the last record in its log. A
// degraded store (damaged records, failing writes) answers /healthz with 503 but still
// names its last position, and is still read and followed.
func (c *client) lastPosition(ctx context.Context) (uint64, error) {
	var h struct {
		Status       string `json:"status"`
		LastPosition uint64 `json:"last_position"`
	}
	raw, err := c.do(ctx, "GET", "/healthz", nil, &h)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable &&
		json.Unmarshal(raw, &h) == nil && h.Status == "degraded" {
		return h.LastPosition, nil
	}
	return h.LastPosition, err
}
