package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// globals are the root's flags that every command talking to a daemon uses.
type globals struct {
	addr, token string
	tlsCA       string // PEM file of the CAs trusted for an https daemon; "" is the system's
	// tlsCAFlag is the root's --tls-ca, Changed when the command line gave it: a CA
	// file that PMD_TLS_CA gave is named by the variable, as main's doc promises.
	tlsCAFlag *pflag.Flag
}

// again is what a command printed for the user to run next (the next page, a retry)
// repeats of how this one reached the daemon: --addr and --tls-ca when the command line
// gave them, not the environment, whose values the next command gets as well. Without
// them the printed command would ask another daemon, or none. The token is never
// printed: a daemon that wants one says so.
func (g *globals) again() string {
	var s string
	if g.addr != envString("PMD_ADDR", defaultAddr) {
		s += " --addr " + shellQuote(g.addr)
	}
	if g.tlsCA != envString("PMD_TLS_CA", "") {
		s += " --tls-ca " + shellQuote(g.tlsCA)
	}
	return s
}

func (g *globals) client() (*client.Client, error) {
	opts := []client.Option{client.WithToken(g.token)}
	if g.tlsCA != "" {
		from := "--tls-ca"
		if g.tlsCAFlag != nil && !g.tlsCAFlag.Changed {
			from = "PMD_TLS_CA"
		}
		cfg, err := clientTLS(from, g.tlsCA)
		if err != nil {
			return nil, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: t}))
	}
	c, err := client.New(g.addr, opts...)
	if err != nil {
		return nil, &usageError{"--addr: " + err.Error()}
	}
	return c, nil
}

// printJSON prints v as one line of JSON, the API's spelling, for scripts.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// expectedValue reads --expected the way the API spells expected versions. An empty
// one (--expected "$V" with V unset) is refused rather than read as any: it would drop
// the check the script meant to make.
func expectedValue(v string) (pmd.ExpectedVersion, error) {
	e, ok := pmd.ParseExpectedVersion(v)
	if !ok {
		return pmd.Any, &usageError{fmt.Sprintf("--expected must be any, no_stream, stream_exists or an integer ≥ -1, got %q", v)}
	}
	return e, nil
}

// jsonObject reads a JSON object given on the command line, keeping its numbers as
// written (json.Number), so that large integers reach the daemon exactly.
func jsonObject(what, s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	if err == nil && dec.More() {
		err = errors.New("more data after the object")
	}
	if err != nil || m == nil {
		return nil, &usageError{fmt.Sprintf("%s %q is not a JSON object", what, s)}
	}
	if err := strictJSON(s); err != nil {
		return nil, &usageError{fmt.Sprintf("%s %q %v", what, s, err)}
	}
	return m, nil
}

// loneSurrogate finds a \u escape of half a UTF-16 surrogate pair without its other
// half, which encoding/json would send on as U+FFFD. s is valid JSON: a backslash is
// always an escape in a string.
func loneSurrogate(s string) error {
	half := func(i int) (rune, bool) { // the \u escape at s[i:], if one
		if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		r, ok := half(i)
		if !ok {
			i++ // a two-byte escape: \\ must not start another
			continue
		}
		if r >= 0xd800 && r < 0xdc00 {
			if low, ok := half(i + 6); ok && low >= 0xdc00 && low < 0xe000 {
				i += 11
				continue
			}
		}
		if r >= 0xd800 && r < 0xe000 {
			return fmt.Errorf("holds %s, half of a UTF-16 surrogate pair", s[i:i+6])
		}
		i += 5
	}
	return nil
}

// strictJSON refuses what encoding/json passes over in silence and the API refuses
// (docs/api.md, "Strict input"): text that is not valid UTF-8, which it would send on as
// U+FFFD, and a key given twice in one object, of which it would send only the last. s
// is known to be valid JSON.
func strictJSON(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if err := loneSurrogate(s); err != nil {
		return err
	}
	// frame is an open object (its keys so far) or array (nil keys).
	type frame struct {
		keys    map[string]bool
		wantKey bool // the object's next token is a key, or its end
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if stack[n-1].keys[k] {
					return fmt.Errorf("gives the key %q twice in one object", k)
				}
				stack[n-1].keys[k] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// readFlags are the flags of the commands that read one page.
type readFlags struct {
	from     string
	backward bool
	limit    int
}

// defaultLimit is the page size of the commands that read one page.
const defaultLimit = 100

func (f *readFlags) register(cmd *cobra.Command, from string) {
	cmd.Flags().StringVar(&f.from, "from", "", from)
	cmd.Flags().BoolVar(&f.backward, "backward", false, "newest first")
	cmd.Flags().IntVar(&f.limit, "limit", defaultLimit, "events per page")
}

// limitFlag is the --limit that the command for the next page repeats, so that it
// reads a page of the same size: "" for the default.
func limitFlag(limit int) string {
	if limit == defaultLimit {
		return ""
	}
	return fmt.Sprintf(" --limit %d", limit)
}

func (f *readFlags) options() (pmd.ReadOptions, error) {
	opts := pmd.ReadOptions{Backward: f.backward, Limit: f.limit}
	if f.limit < 1 {
		return opts, &usageError{fmt.Sprintf("--limit must be ≥ 1, got %d", f.limit)}
	}
	if f.backward {
		opts.From = pmd.End
	}
	if f.from != "" {
		n, err := strconv.ParseUint(f.from, 10, 64)
		if err != nil {
			return opts, &usageError{fmt.Sprintf("--from must be a non-negative integer, got %q", f.from)}
		}
		opts.From = n
	}
	return opts, nil
}

// more tells how to read the page after p, if there is one, from the daemon g reached.
func (f *readFlags) more(w io.Writer, g *globals, p client.Page, command, arg string) {
	if p.Next == nil {
		return
	}
	dir := ""
	if f.backward {
		dir = " --backward"
	}
	fmt.Fprintf(w, "… more: pmd %s%s --from %d%s%s\n", command, dir, *p.Next, limitFlag(f.limit), argsAndFlags(g.again(), arg))
}

func newAppendCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var expected, id, meta string
	cmd := &cobra.Command{
		Use:   "append STREAM TYPE JSON",
		Short: "append one event of type TYPE with the JSON object as its data to STREAM",
		Example: `  pmd append 'Order$42' OrderPlaced '{"order_id":"42"}'
  pmd append 'Order$42' OrderPaid '{"amount":12}' --expected 0 --metadata '{"user":"ann"}'`,
		Args:              wantArgs(3, 3, `STREAM TYPE JSON, e.g. pmd append 'Order$42' OrderPlaced '{"order_id":"42"}'`),
		ValidArgsFunction: completeStreamArg(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream, typ := args[0], args[1]
			if err := checkWritable(stream); err != nil {
				return err
			}
			if err := checkName("TYPE", typ); err != nil {
				return err
			}
			data, err := jsonObject("the event data", args[2])
			if err != nil {
				return err
			}
			ev := pmd.EventData{Type: typ, Data: data}
			if meta != "" {
				if ev.Metadata, err = jsonObject("--metadata", meta); err != nil {
					return err
				}
			}
			if id != "" {
				if ev.ID, err = parseID("--id", id); err != nil {
					return err
				}
			}
			exp, err := expectedValue(expected)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			// An append of ids stored already in stream is a retry: the daemon answers
			// with the earlier append's result and writes nothing. Its positions are at
			// or before the end of the log seen now; a new append's come after it. (A
			// node of a cluster may see less of the log than the leader: a retry then
			// reads as new, as it did before this check. Without the end, likewise.)
			var logEnd uint64
			if id != "" {
				if h, err := c.Health(cmd.Context()); err == nil {
					logEnd = h.LastPosition
				}
			}
			res, err := c.Append(cmd.Context(), stream, exp, ev)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, struct {
					FirstPosition uint64      `json:"first_position"`
					LastPosition  uint64      `json:"last_position"`
					Version       uint64      `json:"version"`
					IDs           []uuid.UUID `json:"ids"`
				}{res.FirstPosition, res.LastPosition, res.Version, res.IDs})
			}
			if res.FirstPosition <= logEnd {
				_, err = fmt.Fprintf(stdout, "nothing appended: event %s is stored already, at version %d of %s (position %d); an append of the same ids to the same stream is a retry\n",
					res.IDs[0], res.Version, stream, res.FirstPosition)
				return err
			}
			_, err = fmt.Fprintf(stdout, "appended %s to %s at version %d (position %d, id %s)\n", typ, stream, res.Version, res.FirstPosition, res.IDs[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().StringVar(&expected, "expected", "any", "expected version: any, no_stream, stream_exists or N")
	cmd.Flags().StringVar(&id, "id", "", "event id (a UUID; one stored already in STREAM makes this a retry that appends nothing); default: the store assigns one")
	cmd.Flags().StringVar(&meta, "metadata", "", "metadata as a JSON object")
	return cmd
}

func newLinkCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var expected string
	cmd := &cobra.Command{
		Use:               "link STREAM ID...",
		Short:             "link stored events, by id, into STREAM",
		Example:           `  pmd link 'Favourites$1' 0190c1d2-0000-7000-8000-000000000001`,
		Args:              wantArgs(2, -1, "STREAM ID..., e.g. pmd link 'Favourites$1' 0190c1d2-0000-7000-8000-000000000001"),
		ValidArgsFunction: completeStreamArg(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWritable(args[0]); err != nil {
				return err
			}
			ids := make([]uuid.UUID, len(args)-1)
			for i, a := range args[1:] {
				id, err := parseID("ID", a)
				if err != nil {
					return err
				}
				ids[i] = id
			}
			exp, err := expectedValue(expected)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Link(cmd.Context(), args[0], exp, ids...)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, res)
			}
			_, err = fmt.Fprintf(stdout, "linked %d event(s) into %s, now at version %d\n", len(ids), args[0], res.Version)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().StringVar(&expected, "expected", "any", "expected version: any, no_stream, stream_exists or N")
	return cmd
}

func newReadCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "read STREAM",
		Short: "read a page of STREAM ($all for the global log), oldest first",
		Example: `  pmd read 'CateringMatch$42'
  pmd read 'Order$42' --backward --limit 10
  pmd read '$all' --from 1000`,
		Args:              wantArgs(1, 1, "STREAM (or $all)"),
		ValidArgsFunction: completeStreamArg(g),
		RunE:              readPage(g, stdout, &rf, &asJSON, "read", true, (*client.Client).ReadStream),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	rf.register(cmd, "first version (a position for $all); default: the first, or the last with --backward")
	return cmd
}

func newCategoryCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "category NAME",
		Short: "read a page of the events of the streams of category NAME (Order for Order$42), in log order",
		Example: `  pmd category Order
  pmd category Order --backward --limit 10`,
		Args: wantArgs(1, 1, "NAME: a category, the part of stream names before their first $"),
		RunE: readPage(g, stdout, &rf, &asJSON, "category", false, (*client.Client).ReadCategory),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	rf.register(cmd, "first position; default: the first, or the last with --backward")
	return cmd
}

// readPage is the RunE of a command that prints a page read by read of its argument:
// the page and the command for the next one, or JSON. inStream says the argument is the
// stream read, whose events print with their versions.
func readPage(g *globals, stdout io.Writer, rf *readFlags, asJSON *bool, name string, inStream bool,
	read func(c *client.Client, ctx context.Context, arg string, opts pmd.ReadOptions) (client.Page, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		check := checkCategory
		if inStream {
			check = func(s string) error { return checkName("STREAM", s) }
		}
		if err := check(args[0]); err != nil {
			return err
		}
		opts, err := rf.options()
		if err != nil {
			return err
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		p, err := read(c, cmd.Context(), args[0], opts)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, p)
		}
		stream := ""
		if inStream {
			stream = args[0]
		}
		printEvents(stdout, p.Events, stream)
		rf.more(stdout, g, p, name, args[0])
		return nil
	}
}

func newStreamsCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var opts client.ListOptions
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "list stream names in order, with their last versions",
		Example: `  pmd streams --prefix 'Order$'
  pmd streams --after 'Order$42' --limit 10`,
		Args: wantArgs(0, 0, "no arguments (--prefix filters)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Limit < 1 {
				return &usageError{fmt.Sprintf("--limit must be ≥ 1, got %d", opts.Limit)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.ListStreams(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, p)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tVERSION\t")
			for _, s := range p.Streams {
				deleted := ""
				if !s.Exists {
					deleted = "(deleted)"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Name, s.Version, deleted)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(p.Streams) == 0 {
				fmt.Fprintln(stdout, "(no streams)")
			}
			if p.Next != nil {
				prefix := ""
				if opts.Prefix != "" {
					prefix = " --prefix " + shellQuote(opts.Prefix)
				}
				fmt.Fprintf(stdout, "… more: pmd streams%s --after %s%s%s\n", prefix, shellQuote(*p.Next), limitFlag(opts.Limit), g.again())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().StringVar(&opts.Prefix, "prefix", "", "only streams whose names start with this")
	cmd.Flags().StringVar(&opts.After, "after", "", "only streams whose names sort after this")
	cmd.Flags().IntVar(&opts.Limit, "limit", defaultLimit, "streams per page")
	return cmd
}

func newDeleteCmd(g *globals, stdout io.Writer) *cobra.Command {
	var expected string
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "delete STREAM: its events stay in the streams they are linked into; the others leave $all",
		Long: `Delete removes STREAM's membership: its events stay in every stream they are linked
into, and those no stream shows any more leave $all. A later append starts the stream
again, at the next version.

A stream with no event (never written, or deleted already) has nothing to delete: pmd
says "nothing to delete" and exits 0, as the API answers 204 for it. To fail (exit 1,
wrong_expected_version) when there is nothing to delete, give --expected stream_exists
or the stream's version.`,
		Example: `  pmd delete 'Order$42'
  pmd delete 'Order$42' --expected 3`,
		Args:              wantArgs(1, 1, "STREAM"),
		ValidArgsFunction: completeStreamArg(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWritable(args[0]); err != nil {
				return err
			}
			exp, err := expectedValue(expected)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			deleted, err := deleteStream(cmd.Context(), c, args[0], exp)
			if err != nil {
				return err
			}
			if !deleted {
				_, err = fmt.Fprintf(stdout, "nothing to delete: stream %s does not exist (never written, or deleted already)\n", args[0])
				return err
			}
			_, err = fmt.Fprintf(stdout, "deleted %s\n", args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&expected, "expected", "any", "expected version: any, no_stream, stream_exists or N (stream_exists: fail if there is nothing to delete)")
	return cmd
}

// deleteStream deletes stream and tells whether it had an event to delete. The API
// answers 204 either way (a delete of a stream with no event writes nothing), so with
// expected any it first deletes with no_stream, which the daemon accepts only when the
// stream has no event; no_stream holding means nothing was there. Only when that is
// refused does it delete with any. (A delete by someone else between the two requests
// is reported as done by this one: the stream is deleted either way.)
func deleteStream(ctx context.Context, c *client.Client, stream string, exp pmd.ExpectedVersion) (bool, error) {
	if exp == pmd.Any {
		err := c.DeleteStream(ctx, stream, pmd.NoStream)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, pmd.ErrWrongExpectedVersion) {
			return false, err
		}
	}
	if err := c.DeleteStream(ctx, stream, exp); err != nil {
		return false, err
	}
	return exp != pmd.NoStream, nil
}

func newTailCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var asJSON bool
	var types, stream, category, from string
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "follow the global log (or --stream S, or --category C) live; --from catches up from a position first",
		Long: `Tail prints events as they are written, until Ctrl-C. Without --from it starts at the
end, with the events written after it started; with --from it first prints the stored
events from that position (a version with --stream), then goes on live. A dropped
connection, or a daemon restart, is resumed where it stopped, without a gap. A damaged
record is reported on stderr and skipped. Each line is an event: its position, time,
stream, type and data; with --stream, its version there first, the number --from takes.
--category C follows the events written to the streams C$… (as pmd category C reads
them), by position; not with --stream or --types.`,
		Example: `  pmd tail --types ConfirmOrder,CancelOrder
  pmd tail --from 1
  pmd tail --stream 'CateringMatch$42' --from 0
  pmd tail --category Order --from 1`,
		Args: wantArgs(0, 0, "no arguments (--stream names a stream, --category a category)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := client.SubscribeOptions{Stream: stream, Category: category}
			var err error
			if cmd.Flags().Changed("types") {
				if opts.Types, err = splitTypes(types); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("category") {
				if err := pmd.CheckCategory(category); err != nil {
					return &usageError{fmt.Sprintf("--category %v", err)}
				}
				switch {
				case cmd.Flags().Changed("stream"):
					return &usageError{"give --category or --stream, not both"}
				case cmd.Flags().Changed("types"):
					return &usageError{"give --category or --types, not both: types filter only the global log"}
				}
			}
			if stream != "" && len(opts.Types) > 0 {
				return &usageError{"give --stream or --types, not both: types filter only the global log"}
			}
			if cmd.Flags().Changed("stream") {
				if err := checkName("--stream", stream); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if from != "" {
				if opts.From, err = strconv.ParseUint(from, 10, 64); err != nil {
					return &usageError{fmt.Sprintf("--from must be a non-negative integer, got %q", from)}
				}
			}
			// Subscribe reconnects until stopped: a daemon that cannot be reached at all
			// must fail here (exit 3), and one that refuses the token (or its absence)
			// too, before tail says it follows anything. Without --from, end's read is
			// that check.
			if from == "" {
				opts.From, err = end(ctx, c, opts)
			} else {
				err = canRead(ctx, c, opts)
			}
			if err != nil {
				return err
			}
			// A stream's tail prints each event's version in it first, as --from takes it,
			// then its position; the global log's, the position alone.
			ofStream := stream != "" && stream != pmd.All
			if !asJSON {
				what := cmp.Or(stream, "$all")
				if category != "" {
					what = "category " + category
				}
				fmt.Fprintf(stderr, "following %s at %s from %d (Ctrl-C to stop)\n", what, c.URL(), opts.From)
			}
			opts.Dropped = func(err error) { fmt.Fprintf(stderr, "connection lost (%v); reconnecting\n", err) }
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			for e, err := range c.Subscribe(ctx, opts) {
				if errors.Is(err, pmd.ErrCorrupt) {
					// The daemon lists the damage in /healthz; the events after it follow.
					fmt.Fprintf(stderr, "skipped a damaged record: %v\n", err)
					continue
				}
				if err != nil {
					return err
				}
				if asJSON {
					if err := printJSON(stdout, e); err != nil {
						return err
					}
					continue
				}
				if ofStream && e.Version != nil {
					fmt.Fprintf(tw, "%d\t", *e.Version)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Position, formatTime(e.Timestamp), e.Stream, e.Type, compact(e.Data, 60))
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil // stopped by Ctrl-C
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON event a line, for scripts")
	cmd.Flags().StringVar(&types, "types", "", "only these event types, comma-separated")
	cmd.Flags().StringVar(&stream, "stream", "", "follow one stream instead of the global log")
	cmd.Flags().StringVar(&category, "category", "", "follow the events written to the streams of this category (Order for Order$42) instead of the global log")
	cmd.Flags().StringVar(&from, "from", "", "catch up from this position (version with --stream), then follow; default: the end")
	_ = cmd.RegisterFlagCompletionFunc("stream", completeStreams(g))
	return cmd
}

// canRead reads the first record of what opts follows (a category, a stream or the
// global log) as a check that the daemon is there and lets this token read what the
// subscription would: its /healthz, which end asks where the global log ends, wants no
// token. A damaged first record was read all the same: the subscription skips it.
func canRead(ctx context.Context, c *client.Client, opts client.SubscribeOptions) error {
	var err error
	switch stream := opts.Stream; {
	case opts.Category != "":
		_, err = c.ReadCategory(ctx, opts.Category, pmd.ReadOptions{Limit: 1})
	case stream == "" || stream == pmd.All:
		_, err = c.ReadAll(ctx, pmd.ReadOptions{Limit: 1})
	default:
		_, err = c.ReadStream(ctx, stream, pmd.ReadOptions{Limit: 1})
	}
	if errors.Is(err, pmd.ErrStreamNotFound) || errors.Is(err, pmd.ErrCorrupt) {
		return nil
	}
	return err
}

// end is where a tail without --from starts: after the last record of the log (for
// the global log or a category), or after the last version of the stream opts follows,
// read as canRead would. A degraded store still says where its log ends, and a damaged
// last event of a stream where it was.
func end(ctx context.Context, c *client.Client, opts client.SubscribeOptions) (uint64, error) {
	stream := opts.Stream
	if opts.Category != "" || stream == "" || stream == pmd.All {
		if err := canRead(ctx, c, opts); err != nil {
			return 0, err
		}
		h, err := c.Health(ctx)
		return h.LastPosition + 1, err
	}
	p, err := c.ReadStream(ctx, stream, pmd.ReadOptions{Backward: true, From: pmd.End, Limit: 1})
	var damaged *client.Error
	switch {
	case errors.Is(err, pmd.ErrStreamNotFound):
		return 0, nil // not there yet: its first event is new
	case errors.Is(err, pmd.ErrCorrupt) && errors.As(err, &damaged):
		return damaged.Version + 1, nil
	case err != nil:
		return 0, err
	case len(p.Events) == 0 || p.Events[0].Version == nil:
		return 0, nil
	}
	return *p.Events[0].Version + 1, nil
}

func newProcessCmd(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "process [NAME ID]",
		Short: "show process NAME ID: its state, stream, commands and deadlines; without arguments, list the process managers",
		Example: `  pmd process
  pmd process CateringMatch 42`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return &usageError{fmt.Sprintf("want NAME ID (or nothing, to list the process managers), got %d argument(s)", len(args))}
			}
			if len(args) == 2 {
				return checkProcess(args[0], args[1], false)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return printManagers(cmd.Context(), c, stdout, asJSON)
			}
			p, err := readWholeProcess(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, p)
			}
			printProcess(stdout, p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func printManagers(ctx context.Context, c *client.Client, w io.Writer, asJSON bool) error {
	list, err := c.Managers(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, map[string]any{"processes": list})
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no process managers (pmd serve --config names a file of them)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tOPEN\tCOMPLETED\tEXPIRED\tHANDLES")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", p.Name, p.Open, p.Completed, p.Expired, strings.Join(p.Handles, ", "))
	}
	return tw.Flush()
}

func printProcess(w io.Writer, p client.Process) {
	status := p.Status
	if p.Erased {
		status += " (its stream was erased, which ended it: it decides nothing again, and its commands and deadlines are not known)"
	}
	fmt.Fprintf(w, "process %s %s: %s\nstream: %s\nstate:  %s\n", p.Manager, p.ID, status, p.Stream, compact(p.State, 200))
	if p.Panic != "" {
		fmt.Fprintf(w, "held:   %s\n        (the definition panicked: nothing is decided or issued for it until pmd starts again; the state is the one before the panic)\n",
			redact.Controls(p.Panic))
	}
	if len(p.Damaged) > 0 {
		versions := make([]string, len(p.Damaged))
		for i, v := range p.Damaged {
			versions[i] = strconv.FormatInt(v, 10)
		}
		fmt.Fprintf(w, "damaged records passed over: versions %s\n        (not shown, nor the command or deadline such a record held; the process manager stops at a record of its own until pmd repair)\n",
			strings.Join(versions, ", "))
	}
	fmt.Fprintln(w)
	events := make([]client.Event, len(p.Events))
	for i, e := range p.Events {
		events[i] = e.Event
	}
	printEvents(w, events, p.Stream)
	if len(p.Commands) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tID\tSTATUS\tATTEMPTS\tLAST ERROR")
		for _, cmd := range p.Commands {
			attempts, last := 0, ""
			for _, a := range cmd.Attempts {
				if a.Outcome == "delivered" || a.Outcome == "failed" {
					attempts++
				}
				if a.Error != "" {
					last = a.Error
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", cmd.Type, cmd.ID, cmd.Status, attempts, redact.Controls(last))
		}
		tw.Flush()
	}
	for _, d := range p.Deadlines {
		fmt.Fprintf(w, "deadline: %s at %s (pending)\n", d.Issue, formatTime(d.Due))
	}
}

// printEvents prints events as a table for people; an event from another stream than
// stream (linked, or in a category read) names where it was written.
func printEvents(w io.Writer, events []client.Event, stream string) {
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
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v, e.Position, e.Type, formatTime(e.Timestamp), from, compact(e.Data, 60))
	}
	tw.Flush()
	if len(events) == 0 {
		fmt.Fprintln(w, "(no events)")
	}
}

// formatTime shows t in the local time zone, with the zone's offset (Z for UTC), so
// that a time read from the terminal is never ambiguous.
func formatTime(t time.Time) string {
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}

// compact renders v as one line of JSON, cut at max runes.
func compact(v any, max int) string {
	v, _ = jsonfloat.Mark(v) // 2.0 as the API writes it: 2 reads as an integer
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := []rune(strings.TrimSuffix(buf.String(), "\n"))
	if len(s) > max {
		return string(s[:max-1]) + "…"
	}
	return string(s)
}

// argsAndFlags is the positional words of a printed command, each quoted, and its
// flags (as again and limitFlag write them, each with a leading space), with a leading
// space: the words then the flags, or, when a word starts with '-' (a stream, process
// id or name may, and the command line would read it as a flag), the flags then -- and
// the words, so that the command reads back as printed.
func argsAndFlags(flags string, words ...string) string {
	dash := false
	quoted := make([]string, len(words))
	for i, w := range words {
		dash = dash || strings.HasPrefix(w, "-")
		quoted[i] = shellQuote(w)
	}
	if dash {
		return flags + " -- " + strings.Join(quoted, " ")
	}
	return " " + strings.Join(quoted, " ") + flags
}

// shellQuote returns s as one word a POSIX shell (or zsh) reads back as s: bare when
// it holds only letters, digits and characters no shell reads specially, in single quotes
// otherwise (an IPv6 address's brackets would glob, a tab or newline would split).
func shellQuote(s string) string {
	if s != "" && !strings.HasPrefix(s, "=") && strings.Trim(s, shellSafe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellSafe are the characters shellQuote leaves bare. A leading = is quoted as well:
// zsh reads =name as the path of the command name.
const shellSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-"

// completeStreams completes stream names from the daemon, for shell completion. It
// offers nothing, rather than an error, when the daemon cannot be asked.
func completeStreams(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		c, err := g.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmp.Or(cmd.Context(), context.Background()), 2*time.Second)
		defer cancel()
		p, err := c.ListStreams(ctx, client.ListOptions{Prefix: toComplete, Limit: 100})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]cobra.Completion, 0, len(p.Streams))
		for _, s := range p.Streams {
			names = append(names, s.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeStreamArg completes the first argument, a stream name.
func completeStreamArg(g *globals) cobra.CompletionFunc {
	streams := completeStreams(g)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return streams(cmd, args, toComplete)
	}
}
