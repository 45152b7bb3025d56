package pm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/logevery"
)

// Filter selects the events of a subscription: set exactly one of its fields.
type Filter struct {
	// Types follows the global log, keeping the events of these types.
	Types []string
	// Stream follows one stream, its own events and those linked into it; positions
	// are then versions of the stream. Not one of the store's own ($all: to follow the
	// global log, set Types).
	Stream string
	// Category follows the events written to the streams of a category (the part of
	// a stream name before its first $).
	Category string
}

// canonical is f with its types sorted and without duplicates: the same events.
func (f Filter) canonical() Filter {
	types := slices.Clone(f.Types)
	slices.Sort(types)
	return Filter{Types: slices.Compact(types), Stream: f.Stream, Category: f.Category}
}

// equal reports whether f and o, both canonical, select the same events.
func (f Filter) equal(o Filter) bool {
	return f.Stream == o.Stream && f.Category == o.Category && slices.Equal(f.Types, o.Types)
}

// narrows reports whether f, canonical, keeps only types that o, canonical, kept: every
// event f selects below a position o reached was delivered.
func (f Filter) narrows(o Filter) bool {
	if len(f.Types) == 0 || len(o.Types) == 0 {
		return false
	}
	for _, typ := range f.Types {
		if _, found := slices.BinarySearch(o.Types, typ); !found {
			return false
		}
	}
	return true
}

// describe names the filter for log lines: stream "X", category "X" or types ["A" "B"].
func (f Filter) describe() string {
	switch {
	case f.Stream != "":
		return fmt.Sprintf("stream %q", f.Stream)
	case f.Category != "":
		return fmt.Sprintf("category %q", f.Category)
	}
	return fmt.Sprintf("types %q", f.canonical().Types)
}

// record is f, canonical, as the records of a subscription's stream carry it.
func (f Filter) record() map[string]any {
	switch {
	case f.Stream != "":
		return map[string]any{"stream": f.Stream}
	case f.Category != "":
		return map[string]any{"category": f.Category}
	}
	return map[string]any{"types": f.canonical().Types}
}

// recordFilter reads the filter a record of a subscription's stream carries: present is
// false for a record written before records carried one; ok is false when it is there
// but malformed (not a map of exactly one of stream, category, or a list of types).
func recordFilter(e *pmd.Event) (f Filter, present, ok bool) {
	v, present := e.Data["filter"]
	if !present {
		return Filter{}, false, true
	}
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return Filter{}, true, false
	}
	if v, ok := m["stream"]; ok {
		f.Stream, ok = v.(string)
		return f, true, ok && f.Stream != ""
	}
	if v, ok := m["category"]; ok {
		f.Category, ok = v.(string)
		return f, true, ok && f.Category != ""
	}
	types, isList := m["types"].([]any)
	if !isList || len(types) == 0 {
		return Filter{}, true, false
	}
	for _, t := range types {
		typ, isString := t.(string)
		if !isString || typ == "" {
			return Filter{}, true, false
		}
		f.Types = append(f.Types, typ)
	}
	return f.canonical(), true, true
}

// EventHandler receives a subscription's events. It may be called more than once for
// an event (after a crash, or when an error was returned); the event's ID is stable, so
// it can drop duplicates. An error makes the event retried later, with back-off; so does
// a panic, recorded as the error "handler panicked: <value>" and logged with its stack.
// An error may ask for a longer wait, up to RetryMax, as a Handler's may (a webhook's
// Retry-After).
// ctx ends when Run stops, and Run returns only once every attempt has: a handler that
// goes on past it keeps Run from returning.
type EventHandler func(ctx context.Context, e pmd.Event) error

// SubscriptionOptions configures a Subscription. Deliver is required; the zero value of
// every other field is a useful default.
type SubscriptionOptions struct {
	// Deliver is handed every matching event, in log order, at least once.
	Deliver EventHandler
	// MaxAttempts is how many attempts in a row may fail before an event is parked:
	// no longer attempted, and holding the subscription back, until Retry or Skip. 0
	// means 10; negative retries for ever.
	MaxAttempts int
	// RetryMin and RetryMax bound the back-off between attempts, as Options' do. 0
	// means 100ms and 1 minute.
	RetryMin, RetryMax time.Duration
	// OnAttempt, if set, is called after every attempt: for metrics. It must be quick.
	// A panic in it is logged with its stack and passed over.
	OnAttempt func(AttemptInfo)
	// Receiver names the receiver in log lines and AttemptInfo (a URL).
	Receiver string
	// ReadAhead is how many matching events are read ahead of the one being delivered;
	// 0 means 256. One read ahead holds its id and place, not its data and metadata:
	// each attempt reads the event again.
	ReadAhead int
	// SaveEvery is how often, at most, the position is written while it moves; 0 means
	// 1 second. A crash redelivers what was delivered since the last write.
	SaveEvery time.Duration
	// KeepRecords is how many records of its stream, at least, the subscription keeps
	// visible as it writes positions: once twice as many are, it hides the older ones
	// (the stream's TruncateBefore), which frees their disk at the next scavenge. 0 means
	// 10,000; negative keeps them all.
	KeepRecords int
	// Clock is the time retries follow; nil is the wall clock.
	Clock Clock
	// Logger receives failed deliveries; nil means slog.Default().
	Logger *slog.Logger
}

// Record types of a subscription's stream "<name>.subscription"; see FORMAT.md.
const (
	subscriptionPositionType = "SubscriptionPosition"
	eventFailedType          = "EventDeliveryFailed"
	eventParkedType          = "EventParked"
	eventRetriedType         = "EventRetried"
	eventSkippedType         = "EventSkipped"
)

// Errors of a Subscription's Retry and Skip.
var (
	// ErrEventNotAwaiting: the subscription has no event of that id awaiting delivery
	// (it was delivered or skipped, or is not read yet).
	ErrEventNotAwaiting = errors.New("event not awaiting delivery")
	// ErrEventNotStuck: the event is being delivered, or waits behind an earlier event;
	// only a parked or failing event can be retried or skipped.
	ErrEventNotStuck = errors.New("event is neither parked nor failing")
	// ErrNotRunning: the subscription is not running.
	ErrNotRunning = errors.New("subscription is not running")
)

// SubscriptionStream is the stream where the subscription called name keeps its
// position, failures, parkings, retries and skips. A subscription's name follows the
// rule of process manager names, so it cannot clash with their streams.
func SubscriptionStream(name string) string { return name + ".subscription" }

// Subscription delivers the events of a Filter to a handler, at least once and in log
// order, from a position it keeps in the store: a restart resumes there. It uses the
// dispatcher that delivers the commands of process managers: an event that fails is
// retried with back-off, parked after MaxAttempts failures in a row, and holds back the
// events behind it until it is delivered, retried (Retry) or skipped (Skip).
//
// Its stream SubscriptionStream(name) records, before each takes effect, every failure,
// parking, retry and skip, each with the position; and the position as it moves, at
// most every SaveEvery, and when Run returns. Events delivered after the last record are
// delivered again after a crash.
//
// Each record carries the filter it was written under. A run whose filter is not the
// one of the newest record (the name kept, the filter changed) starts from the
// beginning of its filter, with a warning: the position counted other events. A Types
// filter that only lost types resumes. Records written before they carried the filter
// are taken as of the filter of the run.
type Subscription struct {
	store   *pmd.Store
	name    string
	filter  Filter
	canon   Filter    // filter, canonical: what its records carry
	ns      uuid.UUID // of the ids of its records: see storeNamespace and ownRecord
	opts    SubscriptionOptions
	clock   Clock
	logger  *slog.Logger
	d       *dispatcher
	started atomic.Bool
	// writing serialises the writes to the subscription's stream with the state they
	// carry, so that its records land in the order the state changed: a position saved
	// while an event fails is written before that failure, or not at all. Taken before
	// mu, never while holding it.
	writing sync.Mutex
	// next is the version of the subscription's stream its next record lands at, and
	// exists whether the stream has versions not deleted: what its writes expect.
	// Guarded by writing.
	next   uint64
	exists bool
	// unsure says that a write failed in a way that leaves open whether it landed: next
	// and exists are read again before the next write.
	unsure bool
	// contended is the WARN that another writer keeps appending to the subscription's
	// stream, so that its writes miss the version they expect: at most once a minute.
	// Guarded by writing.
	contended logevery.Line
	// unwritable is the WARN that the store cannot write now (a full disk, an I/O
	// error), so that the subscription's writes wait: at most once a minute. Guarded by
	// writing.
	unwritable logevery.Line

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change a waiter may wait for
	fatal    error
	position uint64 // every matching event below it is delivered or skipped
	saved    uint64 // position last written
	fed      uint64 // the feeder read every matching event below it
	resumed  *pending
	dropped  map[dropKey]bool // dead events dropped, until OnAttempt is passed over for them

	// trimRead, if set (by tests), is called by trim between its read of the stream's
	// retention and its write.
	trimRead func()
}

// pending is what the subscription's stream said about the event at its position
// when Run started: the event is resumed where its history leaves it, if the feeder
// reads it there first (not another copy of it, at a later version of a stream).
type pending struct {
	id  uuid.UUID
	pos uint64
	h   *history
}

// dropKey is an event dropped at one count of the subscription.
type dropKey struct {
	id  uuid.UUID
	pos uint64
}

// trimTries is how many times in a row trim reads the retention of the subscription's
// stream again when a user changed it between its read and its write.
const trimTries = 3

const (
	defaultReadAhead   = 256
	defaultSaveEvery   = time.Second
	defaultKeepRecords = 10_000
)

// NewSubscription returns the subscription called name of the events filter selects.
// The name follows the rule of process manager names. A filter that matches the
// subscription's own position records (its stream, or the type SubscriptionPosition) is
// refused; two subscriptions that follow each other's position records are not seen
// here, and loop the same way: the caller that makes a set of them must not make such a
// circle. Nothing happens until Run.
func NewSubscription(store *pmd.Store, name string, filter Filter, opts SubscriptionOptions) (*Subscription, error) {
	if store == nil {
		return nil, fmt.Errorf("pm: subscription %s: the store is nil", name)
	}
	if reason := checkName(name); reason != "" {
		return nil, fmt.Errorf("pm: subscription %q: name %s", name, reason)
	}
	set := 0
	if len(filter.Types) > 0 {
		set++
	}
	if filter.Stream != "" {
		set++
	}
	if filter.Category != "" {
		set++
	}
	if set != 1 {
		return nil, fmt.Errorf("pm: subscription %s: the filter must set exactly one of Types, Stream and Category", name)
	}
	if filter.Category != "" {
		if err := pmd.CheckCategory(filter.Category); err != nil {
			return nil, fmt.Errorf("pm: subscription %s: category %w", name, err)
		}
	}
	if filter.Stream != "" {
		// A stream no user can write to (such as $all, which read as a stream would
		// deliver nothing and report no lag) is no stream to follow.
		if err := pmd.CheckWritable(filter.Stream); err != nil {
			return nil, fmt.Errorf("pm: subscription %s: stream %w", name, err)
		}
	}
	for i, typ := range filter.Types {
		if err := pmd.CheckName(typ); err != nil {
			return nil, fmt.Errorf("pm: subscription %s: types[%d] %w", name, i, err)
		}
	}
	// A filter that matches the subscription's own position records feeds itself: each
	// delivery moves the position, whose record is the next event to deliver, a write and
	// a delivery a second for ever. (Its other records are written only as attempts fail
	// or an operator acts.) Two subscriptions that follow each other's stream loop the
	// same way; NewSubscription sees one only, so the owner of the set checks for such
	// circles (config does, as it reads the file).
	own := SubscriptionStream(name)
	switch {
	case filter.Stream == own:
		return nil, fmt.Errorf("pm: subscription %s: stream %q is the subscription's own: each position it writes there would be delivered, for ever", name, own)
	case filter.Category == own:
		// A stream name without a $ is its own category.
		return nil, fmt.Errorf("pm: subscription %s: category %q holds the subscription's own stream: each position it writes there would be delivered, for ever", name, own)
	}
	if i := slices.Index(filter.Types, subscriptionPositionType); i >= 0 {
		return nil, fmt.Errorf("pm: subscription %s: types[%d] %q is the type of the subscription's own position records: each it writes would be delivered, for ever", name, i, subscriptionPositionType)
	}
	if opts.Deliver == nil {
		return nil, fmt.Errorf("pm: subscription %s: SubscriptionOptions.Deliver is nil", name)
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = defaultReadAhead
	}
	if opts.SaveEvery <= 0 {
		opts.SaveEvery = defaultSaveEvery
	}
	if opts.KeepRecords == 0 {
		opts.KeepRecords = defaultKeepRecords
	}
	s := &Subscription{
		store:   store,
		name:    name,
		filter:  Filter{Types: slices.Clone(filter.Types), Stream: filter.Stream, Category: filter.Category},
		canon:   filter.canonical(),
		ns:      storeNamespace(store.ID()),
		opts:    opts,
		clock:   opts.Clock,
		logger:  opts.Logger,
		changed: make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.d = newDispatcher(&s.mu, s.broadcastLocked, (*subscriptionSource)(s), deliveryOptions{
		deliverers:  1, // one event at a time: they go out in log order
		maxAttempts: opts.MaxAttempts,
		retryMin:    opts.RetryMin,
		retryMax:    opts.RetryMax,
		onAttempt:   s.attempted,
	}, s.clock, s.logger.With("subscription", name))
	return s, nil
}

// attempted passes an attempt on to OnAttempt, but for an event dropped as dead: the
// receiver was not called.
func (s *Subscription) attempted(a AttemptInfo) {
	k := dropKey{a.Event.ID, s.count(&a.Event)}
	s.mu.Lock()
	dropped := s.dropped[k]
	delete(s.dropped, k)
	s.mu.Unlock()
	if !dropped && s.opts.OnAttempt != nil {
		s.opts.OnAttempt(a)
	}
}

// Name is the subscription's name.
func (s *Subscription) Name() string { return s.name }

// Filter is the subscription's filter.
func (s *Subscription) Filter() Filter { return s.filter }

func (s *Subscription) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run delivers events until ctx is done, then writes the position and returns nil; it
// returns early with an error if the store fails or closes. A write the store refuses
// as unavailable (a full disk, an I/O error: the store recovers by itself once the
// cause is gone) is waited out, not a failure: a position is written later, and a
// failure or parking is written before the subscription goes on. A store that stopped
// writing until it is opened again (pmd.ErrNeedsRestart) is not waited for: Run returns
// its error. A Subscription runs once.
func (s *Subscription) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("pm: subscription %s: %w", s.name, ErrRunning)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		s.fatal = err // WaitIdle returns it
		s.broadcastLocked()
		s.mu.Unlock()
		return err
	}
	var wg sync.WaitGroup
	spawn := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				s.mu.Lock()
				if s.fatal == nil {
					s.fatal = err
				}
				s.broadcastLocked()
				s.mu.Unlock()
				cancel()
			}
		}()
	}
	s.d.start(spawn)
	spawn(s.feed)
	spawn(s.saveLoop)
	<-ctx.Done()
	wg.Wait()
	s.mu.Lock()
	fatal := s.fatal
	s.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if err := s.save(context.WithoutCancel(ctx), true); err != nil && !errors.Is(err, pmd.ErrClosed) {
		return err
	}
	return nil
}

// load reads where the subscription stands from its stream: the position of its last
// record and, when the records at the end are about one event (it failed, was parked
// or retried), that event's history. Records that are not the subscription's (a user's
// append, or erased) are passed over, and so is a damaged record: the subscription then
// resumes from the readable records before it, and delivers again what it delivered
// since (at least once).
//
// A record is the subscription's when its id is the one the subscription gives the
// version it lands at (ownRecord), which no writer without the store id can make: a
// record in the form of its own that anyone else appends (a position far ahead, a
// skip) is passed over. A stream that shows no such record (written by a version
// before records had these ids, or never written, or deleted) is read as those
// versions wrote it, but for links and for a position past the record's own log
// position, which no subscription wrote; the subscription then at once writes its own
// copy of what it resumed from (adopt), so that from then on only its records count.
func (s *Subscription) load(ctx context.Context) error {
	stream := SubscriptionStream(s.name)
	info, err := s.store.StreamInfo(stream)
	if err != nil {
		return fmt.Errorf("pm: subscription %s: load: %w", s.name, err)
	}
	s.writing.Lock()
	s.next, s.exists = uint64(info.Version+1), info.Exists
	s.writing.Unlock()
	hasOwn, err := s.hasOwnRecord(ctx)
	if err != nil {
		return err
	}
	var trail []Delivery    // newest first
	var trailEv []pmd.Event // the records of trail, for adopt
	var position uint64
	found := false
	// The filter of the newest record: a record written before records carried one
	// (hasRecorded false) is taken as of the filter configured now. newer is the filter
	// of the last record read (the one after this one).
	var recorded, newer Filter
	hasRecorded := false
	for e, err := range backward(ctx, s.store, stream) {
		var damaged *pmd.CorruptError
		if errors.As(err, &damaged) {
			// The store lists the damage in its problems (/healthz) until a repair.
			s.logger.Error("pmd: subscription passed over a damaged record of its stream", "subscription", s.name, "err", damaged)
			if len(trail) > 0 {
				break // what it said about the trail's event is lost: its newer records stand
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("pm: subscription %s: load: %w", s.name, err)
		}
		rec, pos, ok := subscriptionRecordOf(&e)
		filter, hasFilter, filterOK := recordFilter(&e)
		if hasOwn && !s.ownRecord(&e) || !hasOwn && (e.Link || pos > e.Position) {
			ok = false
		}
		if !ok || !filterOK {
			s.logger.Warn("pmd: subscription passed over a record of its stream that is not its own",
				"subscription", s.name, "stream", stream, "version", e.Version, "type", e.Type, "erased", e.Erased)
			continue
		}
		if !found {
			position, found = pos, true
			recorded, hasRecorded = filter, hasFilter
		} else if hasFilter && hasRecorded && !newer.narrows(filter) && !newer.equal(filter) {
			// Written under another filter: about another run's events. A types filter
			// that only lost types resumed where this one stood: its records go on
			// about the same event (the position check below ends them there).
			break
		}
		if hasFilter {
			newer = filter
		}
		if rec.Outcome == "" && pos == position {
			// Nothing new about the event at the position: stores written before saves
			// were serialised with failures may hold one after that event's records.
			continue
		}
		if rec.Outcome == "" || rec.Outcome == OutcomeSkipped || pos != position || len(trail) > 0 && rec.CommandID != trail[0].CommandID {
			break
		}
		trail, trailEv = append(trail, rec), append(trailEv, e)
	}
	if hasRecorded && !recorded.equal(s.canon) {
		if s.canon.narrows(recorded) {
			// Every event of the types kept below the position was delivered.
			s.logger.Info("pmd: subscription's filter lost types: it resumes at its position",
				"subscription", s.name, "old", recorded.describe(), "new", s.canon.describe(), "position", position)
		} else {
			// The position and the records are about other events: the new filter's
			// start from its beginning (at least once: receivers drop duplicates).
			s.logger.Warn("pmd: subscription's filter changed since its position was written: it starts from the beginning of the new filter",
				"subscription", s.name, "old", recorded.describe(), "new", s.canon.describe(), "position", position)
			position, trail, trailEv = 0, nil, nil
		}
	}
	if len(trail) > 0 && len(s.canon.Types) > 0 {
		if _, kept := slices.BinarySearch(s.canon.Types, trail[0].CommandType); !kept {
			// A types filter that lost the type of the event at the position: the
			// feeder never reads it, so its failures are no longer the subscription's
			// (nor its last error).
			trail, trailEv = nil, nil
		}
	}
	// A stream with nothing to carry over (never written, or a position 0 with no event
	// held) gets no copy: a first start writes nothing until there is something to save.
	if !hasOwn && (position > 0 || len(trailEv) > 0) {
		if err := s.adopt(ctx, position, trailEv); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.position, s.saved, s.fed = position, position, position
	if len(trail) > 0 {
		h := &history{}
		for _, rec := range slices.Backward(trail) {
			h.observe(rec)
		}
		s.resumed = &pending{id: trail[0].CommandID, pos: position, h: h}
		if h.lastErr != "" {
			// The time of the failure, not of the newest record: a retry written after
			// it is no error.
			s.d.lastErr, s.d.lastErrAt = h.lastErr, h.lastAt
		}
	}
	return nil
}

// ownRecord reports whether e is a record the subscription wrote: not a link, and its id
// is recordID of its stream and version in the namespace of the store id, as the
// runtime's records in process streams. Whoever appends to the stream without the store
// id cannot make one: the id of a record read says nothing about the namespace.
func (s *Subscription) ownRecord(e *pmd.Event) bool {
	stream := SubscriptionStream(s.name)
	return !e.Link && e.Stream == stream && e.ID == recordID(s.ns, stream, e.Version)
}

// hasOwnRecord reports whether the subscription's stream shows a record of its own.
func (s *Subscription) hasOwnRecord(ctx context.Context) (bool, error) {
	for e, err := range backward(ctx, s.store, SubscriptionStream(s.name)) {
		var damaged *pmd.CorruptError
		if errors.As(err, &damaged) {
			continue // load logs it
		}
		if err != nil {
			return false, fmt.Errorf("pm: subscription %s: load: %w", s.name, err)
		}
		if s.ownRecord(&e) {
			return true, nil
		}
	}
	return false, nil
}

// adopt writes, into a stream that shows no record of the subscription's own, its own
// copy of what load resumed from: the records about the event at the position (trail,
// newest first), oldest first, or else a SubscriptionPosition at the position; each
// carries the filter of the run. From then on load reads only the subscription's own
// records, and a stream upgraded from a version whose records had other ids resumes as
// that version would have.
func (s *Subscription) adopt(ctx context.Context, position uint64, trail []pmd.Event) error {
	var events []pmd.EventData
	for _, e := range slices.Backward(trail) {
		data := maps.Clone(e.Data)
		data["filter"] = s.canon.record()
		if rec, _, _ := subscriptionRecordOf(&e); rec.Outcome == OutcomeFailed || rec.Outcome == OutcomeParked {
			// The copy is written now: it says when the attempt failed, as the
			// original did (its failed_at, or else its timestamp).
			data["failed_at"] = rec.At.UTC().Format(time.RFC3339Nano)
		}
		events = append(events, pmd.EventData{Type: e.Type, Data: data, Metadata: map[string]any{pmd.CausationID: data["event_id"]}})
	}
	if len(events) == 0 {
		events = append(events, pmd.EventData{Type: subscriptionPositionType,
			Data: map[string]any{"position": position, "filter": s.canon.record()}})
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	if _, err := s.appendOwnUntil(ctx, events, true); err != nil {
		return fmt.Errorf("pm: subscription %s: write its own copy of the records it resumes from: %w", s.name, err)
	}
	return nil
}

// ownWriteTries is how many times in a row appendOwn writes again after someone else
// wrote to the subscription's stream between its read of the stream's version and its
// write.
const ownWriteTries = 5

// appendOwn appends events to the subscription's stream with the ids ownRecord expects:
// at the version the stream is at, which the write expects. When someone else wrote to
// the stream (or deleted it) since, it reads the stream's version again and writes
// after them, up to ownWriteTries times; then it returns pmd.ErrWrongExpectedVersion,
// and the next call reads the version again (appendOwnUntil tries on). Called with
// writing held.
//
// The write is not cancelled with ctx: one cancelled in flight may still land, and the
// next write, made for the same version, would have the same ids, which the store takes
// for a retry of it, answering with its result and writing nothing (a newer position
// lost). After a write that failed otherwise, the next one reads the version again.
func (s *Subscription) appendOwn(ctx context.Context, events []pmd.EventData) (pmd.WriteResult, error) {
	ctx = context.WithoutCancel(ctx)
	stream := SubscriptionStream(s.name)
	if s.unsure {
		info, err := s.store.StreamInfo(stream)
		if err != nil {
			return pmd.WriteResult{}, err
		}
		s.next, s.exists, s.unsure = uint64(info.Version+1), info.Exists, false
	}
	for try := 1; ; try++ {
		expected := pmd.NoStream
		if s.exists {
			expected = pmd.AtVersion(s.next - 1)
		}
		for i := range events {
			events[i].ID = recordID(s.ns, stream, s.next+uint64(i))
		}
		res, err := s.store.Append(ctx, stream, expected, events...)
		if err == nil {
			s.next, s.exists = res.Version+1, true
			return res, nil
		}
		if !errors.Is(err, pmd.ErrWrongExpectedVersion) {
			s.unsure = true
			return res, err
		}
		if try == ownWriteTries {
			s.unsure = true
			return res, err
		}
		info, ierr := s.store.StreamInfo(stream)
		if ierr != nil {
			return res, ierr
		}
		s.next, s.exists = uint64(info.Version+1), info.Exists
	}
}

// ownRetryMin and ownRetryMax bound the back-off of appendOwnUntil between rounds of
// appendOwn that another writer made miss; unwritableRetryMax bounds it while the store
// cannot write, which lasts until someone frees the disk.
const (
	ownRetryMin        = time.Millisecond
	ownRetryMax        = 100 * time.Millisecond
	unwritableRetryMax = time.Second
)

// appendOwnUntil is appendOwn for a record that must land before the subscription goes
// on (a failure, a parking, a skip, the copy adopt writes): when another writer keeps
// appending to the subscription's stream, so that every try of appendOwn misses, or,
// with untilWritable, while the store refuses writes as unavailable (a full disk), it
// tries again after a back-off, reading the stream's version again each time, until the
// write lands or ctx ends (its error then). It logs a WARN at most once a minute
// meanwhile. Called with writing held, which it keeps: the records land in order.
func (s *Subscription) appendOwnUntil(ctx context.Context, events []pmd.EventData, untilWritable bool) (pmd.WriteResult, error) {
	wait := ownRetryMin
	for {
		res, err := s.appendOwn(ctx, events)
		limit := ownRetryMax
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, pmd.ErrWrongExpectedVersion):
			s.warnContended(err)
		case untilWritable && waitable(err):
			s.warnUnwritable(err, "the subscription waits until its record lands")
			limit = unwritableRetryMax
		default:
			return res, err
		}
		if err := pause(ctx, wait); err != nil {
			return res, err
		}
		wait = min(2*wait, limit)
	}
}

// warnContended logs, at most once a minute, that another writer keeps appending to the
// subscription's stream: err is the write of the subscription's that it made miss.
// Called with writing held.
func (s *Subscription) warnContended(err error) {
	held, ok := s.contended.Log(s.clock.Now())
	if !ok {
		return
	}
	s.logger.Warn("pm: another writer keeps appending to the subscription's stream: the subscription's records wait, and its position is saved later (events after it may be delivered again after a restart); stop that writer",
		"stream", SubscriptionStream(s.name), "suppressed", held, "err", err)
}

// warnUnwritable logs, at most once a minute, that the store cannot write now, so that
// the subscription's write err waits (then says how), with the advice that fits err's
// cause (unwritableAdvice). Called with writing held.
func (s *Subscription) warnUnwritable(err error, then string) {
	held, ok := s.unwritable.Log(s.clock.Now())
	if !ok {
		return
	}
	s.logger.Warn("pm: the store cannot write now, so the subscription cannot write to its stream: "+then+"; "+unwritableAdvice(err),
		"subscription", s.name, "stream", SubscriptionStream(s.name), "suppressed", held, "err", err)
}

// feed reads the matching events from the position on, live once caught up, and
// queues them, at most ReadAhead ahead of the one delivered.
func (s *Subscription) feed(ctx context.Context) error {
	s.mu.Lock()
	from := s.position
	s.mu.Unlock()
	opts := pmd.SubscribeOptions{From: from, Types: s.filter.Types, Stream: s.filter.Stream, Category: s.filter.Category}
	for ev, err := range s.store.Subscribe(ctx, opts) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ce *pmd.CorruptError
			if errors.As(err, &ce) {
				// The store lists the damage in its problems (/healthz) until a repair;
				// the events after it must not wait for that.
				s.logger.Error("pmd: subscription skipped a damaged record", "subscription", s.name, "err", err)
				skipped := ce.Position
				if s.filter.Stream != "" {
					skipped = ce.Version
				}
				s.mu.Lock()
				s.fed = max(s.fed, skipped+1)
				if len(s.d.queues[""]) == 0 {
					s.position = max(s.position, s.fed) // nothing before it waits
				}
				s.broadcastLocked()
				s.mu.Unlock()
				continue
			}
			return fmt.Errorf("pm: subscription %s: read: %w", s.name, err)
		}
		// Read ahead, the event holds its place only: every attempt reads it again
		// (deliver), and ReadAhead events of the largest size the store takes would hold
		// gigabytes behind a receiver that is down; dropped before the wait for room, the
		// event read while the read-ahead is full holds none either.
		ev.Data, ev.Metadata = nil, nil
		if err := s.wait(ctx, func() bool { return len(s.d.queues[""]) < s.opts.ReadAhead }); err != nil {
			return nil
		}
		x := &delivery{id: ev.ID, typ: ev.Type, ev: &ev, pos: s.count(&ev), receiver: s.opts.Receiver}
		s.mu.Lock()
		if r := s.resumed; r != nil {
			if r.id == ev.ID && r.pos == x.pos {
				x = r.h.resume(x)
			}
			s.resumed = nil
		}
		s.fed = x.pos + 1
		s.d.add(x)
		s.broadcastLocked()
		s.mu.Unlock()
		s.d.kick()
	}
	return nil
}

// count is where e stands in the subscription: its version for a stream, its position
// otherwise.
func (s *Subscription) count(e *pmd.Event) uint64 {
	if s.filter.Stream != "" {
		return e.Version
	}
	return e.Position
}

// saveLoop writes the position whenever it moved, at most every SaveEvery.
func (s *Subscription) saveLoop(ctx context.Context) error {
	for {
		if err := s.wait(ctx, func() bool { return s.position > s.saved }); err != nil {
			return nil
		}
		if err := s.save(ctx, false); err != nil {
			if ctx.Err() != nil || errors.Is(err, pmd.ErrClosed) {
				return nil
			}
			return err
		}
		fire, stop := wakeAt(s.clock, s.clock.Now().Add(s.opts.SaveEvery))
		select {
		case <-fire:
		case <-ctx.Done():
			stop()
			return nil
		}
	}
}

// save writes the position if it moved. It is best-effort: when another writer keeps
// appending to the subscription's stream, so that appendOwn misses every try, or the
// store cannot write now (a full disk), it logs that (warnContended, warnUnwritable)
// and returns nil, leaving the position for the next save; one not saved only means
// that the events after the saved one are delivered again after a restart (at least
// once). stopping says that Run is returning: a write refused then for a cause that is
// not the disk's (a cluster node that stops or lost its leadership) is logged at INFO.
func (s *Subscription) save(ctx context.Context, stopping bool) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	s.mu.Lock()
	pos, moved := s.position, s.position > s.saved
	s.mu.Unlock()
	if !moved {
		return nil
	}
	res, err := s.appendOwn(ctx, []pmd.EventData{{
		Type: subscriptionPositionType,
		Data: map[string]any{"position": pos, "filter": s.canon.record()},
	}})
	switch {
	case errors.Is(err, pmd.ErrWrongExpectedVersion):
		s.warnContended(err)
		return nil
	case waitable(err) && stopping && !diskCause(err):
		s.logger.Info(stoppedUnwritable+"the subscription's position is not written (events after the one written may be delivered again after a restart)",
			"subscription", s.name, "stream", SubscriptionStream(s.name), "err", err)
		return nil
	case waitable(err):
		s.warnUnwritable(err, "its position is written later (events after the one written may be delivered again after a restart)")
		return nil
	case err != nil:
		return fmt.Errorf("pm: subscription %s: write the position: %w", s.name, err)
	}
	s.mu.Lock()
	s.saved = max(s.saved, pos)
	s.mu.Unlock()
	// Even when ctx ends now, as Run stops: the position is written, and the next save
	// may be far off.
	s.trim(context.WithoutCancel(ctx), res.Version)
	return nil
}

// trim hides the records of the subscription's stream more than KeepRecords older than
// version, the SubscriptionPosition just written, once twice as many are visible. No
// record older than a SubscriptionPosition is needed to resume: one is written only when
// the position moved past the last position with a failure, parking or retry recorded
// (record sets saved to it, and the position does not move past an event that is
// failing or parked), so the records before it are about events done. The ones kept are
// for a damaged newest record, which load passes over. Called with writing held.
//
// The user's MaxAge and MaxCount stay: the settings are written only if this node's
// store still has those read (SetRetentionIf), and read again if a user changed them in
// between. One who keeps changing them wins: the trim gives up after trimTries, until
// the next save. In a cluster, a change made through another node and not yet applied
// here is not seen by that check: if it is committed before the trim's write, the trim
// replaces it with the settings it read (docs/retention.md).
func (s *Subscription) trim(ctx context.Context, version uint64) {
	if s.opts.KeepRecords < 0 {
		return
	}
	stream, keep := SubscriptionStream(s.name), uint64(s.opts.KeepRecords)
	var err error
	for range trimTries {
		var r pmd.Retention
		r, err = s.store.Retention(stream)
		if err != nil || version < r.TruncateBefore+2*keep {
			break
		}
		if s.trimRead != nil {
			s.trimRead()
		}
		next := r
		next.TruncateBefore = version - keep
		if err = s.store.SetRetentionIf(ctx, stream, r, next); !errors.Is(err, pmd.ErrRetentionChanged) {
			break
		}
	}
	if err != nil && !errors.Is(err, pmd.ErrClosed) {
		// Housekeeping: the stream is only longer than it needs to be.
		s.logger.Warn("pmd: subscription could not hide the old records of its stream", "subscription", s.name, "err", err)
	}
}

// wait blocks until cond, called with mu held, holds.
func (s *Subscription) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, fatal, changed := cond(), s.fatal, s.changed
		s.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case ok:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitIdle returns once the subscription has nothing left to do for now: every
// matching event in the store is delivered, or waits for its retry time, or is held
// back by a parked one. It returns early when ctx is done or Run failed.
func (s *Subscription) WaitIdle(ctx context.Context) error {
	for {
		newest, err := s.newest(ctx)
		if err != nil {
			return err
		}
		err = s.wait(ctx, func() bool {
			caughtUp := !newest.ok || s.fed > newest.at || len(s.d.queues[""]) >= s.opts.ReadAhead
			return caughtUp && s.d.spawn != nil && s.d.idleLocked(s.clock.Now())
		})
		if err != nil {
			return err
		}
		again, err := s.newest(ctx)
		if err != nil || again == newest {
			return err
		}
	}
}

// at is a count of the subscription, if there is one.
type at struct {
	at uint64
	ok bool
}

// newest is the count of the newest matching event the store shows: for a stream, the
// version of its newest event still read (not the last version it ever had: its events
// may be deleted, or hidden by its retention).
func (s *Subscription) newest(ctx context.Context) (at, error) {
	var seq func(func(pmd.Event, error) bool)
	back := pmd.ReadOptions{From: pmd.End, Backward: true, Limit: 1}
	switch {
	case s.filter.Stream != "":
		seq = s.store.ReadStream(ctx, s.filter.Stream, back)
	case s.filter.Category != "":
		seq = s.store.ReadCategory(ctx, s.filter.Category, back)
	default:
		back.From = s.store.LastPosition()
		if back.From == 0 {
			return at{}, nil
		}
		back.Types = s.filter.Types
		seq = s.store.ReadAll(ctx, back)
	}
	for e, err := range seq {
		var ce *pmd.CorruptError
		switch {
		case errors.As(err, &ce):
			// feed skips it as it would queue it
			if s.filter.Stream != "" {
				return at{ce.Version, true}, nil
			}
			return at{ce.Position, true}, nil
		case errors.Is(err, pmd.ErrStreamNotFound):
			return at{}, nil
		case err != nil:
			return at{}, fmt.Errorf("pm: subscription %s: %w", s.name, err)
		}
		return at{s.count(&e), true}, nil
	}
	return at{}, nil
}

// ParkedEvent is an event that failed SubscriptionOptions.MaxAttempts times in a row
// and holds its subscription back until Retry or Skip.
type ParkedEvent struct {
	Event    pmd.Event
	At       uint64 // where it stands in the subscription: its position, or its version in the stream
	Attempts int    // made so far
	Err      string // of the last attempt
}

// FailingEvent is the event at a subscription's position whose last attempt failed:
// it holds the subscription back until an attempt delivers it, or Retry or Skip.
type FailingEvent struct {
	Event    pmd.Event
	At       uint64 // where it stands in the subscription: its position, or its version in the stream
	Attempts int    // made so far
	Err      string // of the last attempt
	// RetryAt is when it is attempted again; zero while an attempt of it runs (Retry
	// and Skip then fail with ErrEventNotStuck).
	RetryAt time.Time
}

// SubscriptionStatus is where a subscription stands.
type SubscriptionStatus struct {
	// Position: every matching event below it is delivered or skipped. A log position,
	// or a version of the stream for a Stream filter.
	Position uint64
	// Lag is from Position to the newest matching event, both included; 0 when caught
	// up, or when it could not be read (LagErr).
	Lag uint64
	// LagErr is why the lag could not be read (the index's read of the newest matching
	// event failed: a damaged index, which the store reports); nil when Lag is right.
	// The rest of the status holds.
	LagErr error
	// Parked are the parked events, in log order.
	Parked []ParkedEvent
	// Failing is the event that failed its last attempt and is not parked (failed
	// fewer than MaxAttempts times in a row); nil when none is.
	Failing *FailingEvent
	// RetryAt is when the failing event is tried again; zero when none is failing, or
	// while its next attempt runs.
	RetryAt time.Time
	// LastErr is the error of the last failed attempt and LastErrAt when it failed,
	// by Clock; empty when none failed since Run started, but for an event still
	// failing or parked, whose error and its time are read from the subscription's
	// stream (failed_at, FORMAT.md): a restart does not move LastErrAt.
	LastErr   string
	LastErrAt time.Time
}

// Status says where the subscription stands. The lag costs one read of the index; if
// that read fails (but for ctx or a closed store), the status says so in LagErr rather
// than failing: where it stands and what is parked are known without it.
func (s *Subscription) Status(ctx context.Context) (SubscriptionStatus, error) {
	newest, lagErr := s.newest(ctx)
	if lagErr != nil && (ctx.Err() != nil || errors.Is(lagErr, pmd.ErrClosed)) {
		return SubscriptionStatus{}, lagErr
	}
	s.mu.Lock()
	st := SubscriptionStatus{Position: s.position, LastErr: s.d.lastErr, LastErrAt: s.d.lastErrAt, LagErr: lagErr}
	if lagErr == nil && newest.ok && newest.at >= s.position {
		st.Lag = newest.at - s.position + 1
	}
	for _, x := range s.d.queues[""] {
		switch {
		case x.state == stateParked:
			st.Parked = append(st.Parked, ParkedEvent{Event: *x.ev, At: x.pos, Attempts: x.attempts, Err: x.lastErr})
		case x.failures > 0:
			// The head (only the head is attempted): waiting for its retry time, or
			// being attempted again, or held while a Retry or Skip is recorded.
			st.Failing = &FailingEvent{Event: *x.ev, At: x.pos, Attempts: x.attempts, Err: x.lastErr}
			if x.state == stateWaiting {
				st.RetryAt, st.Failing.RetryAt = x.retryAt, x.retryAt
			}
		}
	}
	s.mu.Unlock()
	// As the store reads them now: erased, if their stream was. A dead one stays listed,
	// as its last attempt read it, until Retry drops it or Skip passes it; so does one
	// whose record was damaged since (the store reports the damage; an operator still
	// sees the event, without its data if no attempt read it since Run started).
	events := make([]*pmd.Event, 0, len(st.Parked)+1)
	for i := range st.Parked {
		events = append(events, &st.Parked[i].Event)
	}
	if st.Failing != nil {
		events = append(events, &st.Failing.Event)
	}
	for _, e := range events {
		ev, err := s.current(ctx, e)
		switch {
		case err == nil:
			*e = ev
		case !errors.Is(err, pmd.ErrEventNotFound) && !errors.Is(err, pmd.ErrCorrupt):
			return SubscriptionStatus{}, err
		}
	}
	return st, nil
}

// Retry queues the parked or failing event id for delivery at once, its count of
// failures towards MaxAttempts started again. The retry is recorded in the
// subscription's stream (EventRetried) first.
//
// A Stream subscription may hold one event at two versions of its stream (linked into
// it again after the stream was deleted); Retry and Skip act on the copy that is parked
// or failing, and the other is delivered in its turn.
func (s *Subscription) Retry(ctx context.Context, id uuid.UUID) error {
	return s.operate(ctx, id, OutcomeRetried)
}

// Skip gives up the parked or failing event id: it is never delivered, and the
// subscription moves past it. The skip is recorded in the subscription's stream
// (EventSkipped) first.
func (s *Subscription) Skip(ctx context.Context, id uuid.UUID) error {
	return s.operate(ctx, id, OutcomeSkipped)
}

func (s *Subscription) operate(ctx context.Context, id uuid.UUID, outcome string) error {
	if !s.d.running() {
		return fmt.Errorf("pm: subscription %s: %w", s.name, ErrNotRunning)
	}
	return s.d.operate(ctx, id, outcome, func(*delivery) bool { return true },
		fmt.Errorf("pm: subscription %s: event %s: %w", s.name, id, ErrEventNotAwaiting),
		fmt.Errorf("pm: subscription %s: event %s: %w", s.name, id, ErrEventNotStuck))
}

// subscriptionSource is the dispatcher's source for a Subscription: its feeder queues
// the events, and delivered events move the position rather than write a record each.
type subscriptionSource Subscription

func (src *subscriptionSource) pendingLocked() bool        { return false }
func (src *subscriptionSource) read(context.Context) error { return nil }

// deliver hands x's event to the handler as the store reads it now: erased, if its
// stream was erased since it was read (it may have waited, parked or read ahead, for
// long). A dead event is dropped: it counts as done, the position moves past it, and
// OnAttempt does not see it. So is, for a Stream filter, an event no longer at its
// version of the stream (the stream was deleted or truncated, taking the event or its
// link away), though it may live on in another stream.
func (src *subscriptionSource) deliver(ctx context.Context, x *delivery) (Command, error) {
	s := (*Subscription)(src)
	ev, err := s.current(ctx, x.ev)
	if errors.Is(err, pmd.ErrEventNotFound) {
		s.drop(x, "pmd: subscription dropped an event that is no longer in the store")
		return Command{}, nil
	}
	if err != nil {
		return Command{}, fmt.Errorf("read the event again: %w", err)
	}
	if s.filter.Stream != "" {
		in, err := s.inStream(ctx, x)
		if err != nil {
			return Command{}, fmt.Errorf("read the stream again: %w", err)
		}
		if !in {
			s.drop(x, "pmd: subscription dropped an event that is no longer in the stream it follows")
			return Command{}, nil
		}
	}
	// The item keeps what this attempt read, for OnAttempt and for Status, which shows a
	// parked or failing event as last read once its record is damaged. Only the
	// attempted event holds its data: the one item of the subscription in play.
	s.mu.Lock()
	x.ev.Data, x.ev.Metadata, x.ev.Erased = ev.Data, ev.Metadata, ev.Erased
	s.mu.Unlock()
	return Command{}, callHandler(ctx, s.logger, append([]any{"subscription", s.name}, (*subscriptionSource)(s).attrs(x)...), s.opts.Deliver, ev)
}

// drop logs why x is passed over and marks it dropped: its attempt, which succeeds
// without calling the handler, is no attempt for OnAttempt.
func (s *Subscription) drop(x *delivery, why string) {
	s.logger.Warn(why, append([]any{"subscription", s.name}, (*subscriptionSource)(s).attrs(x)...)...)
	s.mu.Lock()
	if s.dropped == nil {
		s.dropped = make(map[dropKey]bool)
	}
	s.dropped[dropKey{x.id, x.pos}] = true
	s.mu.Unlock()
}

// inStream reports whether x's event is still at its version of the followed stream:
// one read of the stream's index at that version.
func (s *Subscription) inStream(ctx context.Context, x *delivery) (bool, error) {
	for e, err := range s.store.ReadStream(ctx, s.filter.Stream, pmd.ReadOptions{From: x.pos, Limit: 1}) {
		switch {
		case errors.Is(err, pmd.ErrStreamNotFound):
			return false, nil // deleted
		case err != nil:
			return false, err
		}
		return e.Version == x.pos && e.ID == x.id, nil
	}
	return false, nil // hidden by the stream's retention, like every version after it
}

// current returns ev, an event the subscription read, with the data, metadata and
// erasure the store reads for it now; where it stands in the subscription (its version
// in a followed stream, a link) stays. An error wrapping pmd.ErrEventNotFound says it
// is dead.
func (s *Subscription) current(ctx context.Context, ev *pmd.Event) (pmd.Event, error) {
	now, err := s.store.Event(ctx, ev.ID)
	if err != nil {
		return pmd.Event{}, fmt.Errorf("pm: subscription %s: %w", s.name, err)
	}
	out := *ev
	out.Data, out.Metadata, out.Erased = now.Data, now.Metadata, now.Erased
	return out, nil
}

func (src *subscriptionSource) attrs(x *delivery) []any {
	return []any{"event", x.id, "type", x.typ, "stream", x.ev.Stream, "at", x.pos}
}

// record moves the position past a delivered event, in memory: saveLoop writes it.
// Anything else is written at once, with the position it leaves: the event's own
// (every event before it is done, as they go out in order), or past it for a skip.
func (src *subscriptionSource) record(ctx context.Context, x *delivery, recs ...Delivery) error {
	s := (*Subscription)(src)
	if len(recs) == 1 && recs[0].Outcome == OutcomeDelivered {
		s.mu.Lock()
		s.position = max(s.position, x.pos+1)
		if q := s.d.queues[""]; len(q) == 1 && q[0] == x {
			// Nothing fed after x waits: the damaged records the feeder skipped after it
			// are passed too.
			s.position = max(s.position, s.fed)
		}
		s.broadcastLocked()
		s.mu.Unlock()
		return nil
	}
	pos := x.pos
	if recs[len(recs)-1].Outcome == OutcomeSkipped {
		pos = x.pos + 1
		s.mu.Lock()
		if q := s.d.queues[""]; len(q) == 1 && q[0] == x {
			pos = max(pos, s.fed) // as for a delivery: the damage skipped after x is passed too
		}
		s.mu.Unlock()
	}
	events := make([]pmd.EventData, len(recs))
	for i, rec := range recs {
		data := map[string]any{
			"position":     pos,
			"event_id":     x.id.String(),
			"event_type":   x.typ,
			"event_stream": x.ev.Stream,
			"attempt":      rec.Attempt,
			"filter":       s.canon.record(),
		}
		if rec.Err != "" {
			data["error"] = rec.Err
		}
		if !rec.RetryAt.IsZero() {
			data["retry_at"] = rec.RetryAt.UTC().Format(time.RFC3339Nano)
		}
		if (rec.Outcome == OutcomeFailed || rec.Outcome == OutcomeParked) && !rec.At.IsZero() {
			data["failed_at"] = rec.At.UTC().Format(time.RFC3339Nano)
		}
		events[i] = pmd.EventData{
			Type:     eventRecordType(rec.Outcome),
			Data:     data,
			Metadata: map[string]any{pmd.CausationID: x.id.String()},
		}
	}
	// A retry or a skip, asked for by an operator, fails at once when the store cannot
	// write (they get its error); the failures and parkings of attempts wait for it.
	untilWritable := recs[0].Outcome != OutcomeRetried && recs[0].Outcome != OutcomeSkipped
	s.writing.Lock()
	defer s.writing.Unlock()
	if _, err := s.appendOwnUntil(ctx, events, untilWritable); err != nil {
		return fmt.Errorf("pm: subscription %s: record a delivery: %w", s.name, err)
	}
	s.mu.Lock()
	s.position = max(s.position, pos)
	s.saved = max(s.saved, pos)
	s.broadcastLocked()
	s.mu.Unlock()
	return nil
}

func eventRecordType(outcome string) string {
	switch outcome {
	case OutcomeParked:
		return eventParkedType
	case OutcomeRetried:
		return eventRetriedType
	case OutcomeSkipped:
		return eventSkippedType
	default:
		return eventFailedType
	}
}

// subscriptionRecordOf reads a record of a subscription's stream: its position and,
// unless it is a SubscriptionPosition (Outcome empty), what it says about the event
// (CommandID is the event's id).
func subscriptionRecordOf(e *pmd.Event) (Delivery, uint64, bool) {
	pos, ok := asUint64(e.Data["position"])
	if !ok {
		return Delivery{}, 0, false
	}
	var outcome string
	switch e.Type {
	case subscriptionPositionType:
		return Delivery{}, pos, true
	case eventFailedType:
		outcome = OutcomeFailed
	case eventParkedType:
		outcome = OutcomeParked
	case eventRetriedType:
		outcome = OutcomeRetried
	case eventSkippedType:
		outcome = OutcomeSkipped
	default:
		return Delivery{}, 0, false
	}
	s, _ := e.Data["event_id"].(string)
	id, err := uuid.Parse(s)
	if err != nil {
		return Delivery{}, 0, false
	}
	n, _ := asUint64(e.Data["attempt"])
	d := Delivery{CommandID: id, Attempt: int(n), At: e.Timestamp, Outcome: outcome}
	d.CommandType, _ = e.Data["event_type"].(string)
	d.Err, _ = e.Data["error"].(string)
	if at, ok := e.Data["retry_at"].(string); ok {
		d.RetryAt, _ = time.Parse(time.RFC3339Nano, at)
	}
	// When the attempt failed, by the subscription's clock: the record's timestamp is
	// when it was written, later, and a copy's (adopt) later still. Records written
	// before they carried it have their timestamp.
	if at, ok := e.Data["failed_at"].(string); ok && (outcome == OutcomeFailed || outcome == OutcomeParked) {
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			d.At = t
		}
	}
	if (outcome == OutcomeFailed || outcome == OutcomeParked) && d.Err == "" {
		d.Err = "handler failed"
	}
	return d, pos, true
}
