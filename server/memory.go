package server

import (
	linked "container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// budgetWait is how long a request waits for bytes of the memory budget before it is
// refused with unavailable.
const budgetWait = time.Second

// memoryBudget bounds the bytes that request bodies and pages of events hold together
// (Options.MemoryBudget): each reserves its bytes before it allocates them and gives
// them back when its request ends. Without it, clients that send slowly or do not read
// would each keep a body or a page alive, and together any amount.
//
// Requests that hold bytes are kept in the order they took their first: the oldest of
// them may always take more, beyond the limit if need be, and no other may. So one
// request never waits on another that waits too (each holding part of what it needs,
// as two chunked uploads would): the oldest goes on, ends and gives its bytes back, and
// the next becomes the oldest. The bytes held beyond the limit are the oldest's alone,
// so they never exceed what one request holds: a body (Options.MaxBody) or a page.
type memoryBudget struct {
	limit int64
	wait  time.Duration
	// full is the error of a request that could not get its bytes in time.
	full error

	mu   sync.Mutex
	held int64
	// holders are the reservations that hold bytes, oldest first.
	holders linked.List
	// freed is closed, and replaced, when bytes are given back.
	freed chan struct{}
}

func newMemoryBudget(limit int64) *memoryBudget {
	return &memoryBudget{
		limit: limit,
		wait:  budgetWait,
		full: errUnavailable(fmt.Sprintf("the server is at its memory budget: request bodies, the values parsed from them and pages being sent "+
			"already hold its %d bytes; retry shortly", limit)),
		freed: make(chan struct{}),
	}
}

// tryTake reserves n more bytes for r if they fit: within the limit, or for the oldest
// request that holds bytes (or the first to hold any), beyond it.
func (b *memoryBudget) tryTake(r *reservation, n int64) (ok bool, freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	oldest := b.holders.Len() == 0 || r.elem != nil && b.holders.Front() == r.elem
	if b.held+n > b.limit && !oldest {
		return false, b.freed
	}
	b.held += n
	r.n += n
	if r.elem == nil {
		r.elem = b.holders.PushBack(r)
	}
	return true, nil
}

// take is tryTake, waiting up to b.wait for others to give their bytes back.
func (b *memoryBudget) take(ctx context.Context, r *reservation, n int64) error {
	ok, freed := b.tryTake(r, n)
	if ok {
		return nil
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	for {
		select {
		case <-freed:
		case <-timer.C:
			return b.full
		case <-ctx.Done():
			return ctx.Err()
		}
		if ok, freed = b.tryTake(r, n); ok {
			return nil
		}
	}
}

// release gives back all r holds.
func (b *memoryBudget) release(r *reservation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.elem == nil {
		return
	}
	b.holders.Remove(r.elem)
	r.elem = nil
	b.held -= r.n
	r.n = 0
	close(b.freed)
	b.freed = make(chan struct{})
}

// give gives back n of the bytes r holds (at most all of them), before its request
// ends. r keeps its place among the holders while it holds bytes: one that holds none
// (a subscription between events) must not stay the oldest, which alone may pass the
// limit, for as long as it lasts.
func (b *memoryBudget) give(r *reservation, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, r.n)
	if n <= 0 {
		return
	}
	b.held -= n
	r.n -= n
	if r.n == 0 {
		b.holders.Remove(r.elem)
		r.elem = nil
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// Held is the number of bytes reserved now.
func (b *memoryBudget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// heldBy is the number of bytes r holds now.
func (b *memoryBudget) heldBy(r *reservation) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.n
}

// reservation is what one request holds of the budget; wrap gives it back, whole,
// when the request ends, however it ends. A nil reservation reserves nothing.
type reservation struct {
	s *Server
	// n is what it holds, and elem its place among the budget's holders (nil while
	// it holds nothing); both change under the budget's lock.
	n    int64
	elem *linked.Element
}

type reservationKey struct{}

func reservationOf(ctx context.Context) *reservation {
	res, _ := ctx.Value(reservationKey{}).(*reservation)
	return res
}

// take reserves n more bytes, waiting a little if the budget is full.
func (r *reservation) take(ctx context.Context, n int64) error {
	if r == nil || n <= 0 {
		return nil
	}
	err := r.s.memory.take(ctx, r, n)
	if err == r.s.memory.full {
		r.s.metrics.budgetRefused.Inc()
	}
	return err
}

// tryTake reserves n more bytes if the budget has them now.
func (r *reservation) tryTake(n int64) bool {
	if r == nil || n <= 0 {
		return true
	}
	ok, _ := r.s.memory.tryTake(r, n)
	return ok
}

// give gives back n of the bytes the request holds, those of a value it let go of.
func (r *reservation) give(n int64) {
	if r != nil {
		r.s.memory.give(r, n)
	}
}

// free gives back all the request holds.
func (r *reservation) free() {
	if r != nil {
		r.s.memory.release(r)
	}
}

// grow returns buf with a capacity of size (at least its own), reserving the bytes it
// adds before allocating them; wait says whether to wait for them when the budget is
// full. On failure buf is returned as it was. ok is false when wait is false and the
// budget has no room now.
func (r *reservation) grow(ctx context.Context, buf []byte, size int, wait bool) (_ []byte, ok bool, err error) {
	if size <= cap(buf) {
		return buf, true, nil
	}
	add := int64(size - cap(buf))
	if wait {
		if err := r.take(ctx, add); err != nil {
			return buf, false, err
		}
	} else if !r.tryTake(add) {
		return buf, false, nil
	}
	grown := make([]byte, len(buf), size)
	copy(grown, buf)
	return grown, true, nil
}
