package index

import (
	"slices"
	"sort"
)

// nameChunk is the most streams a chunk of the name list holds before it splits. Inserting
// a name moves at most one chunk's references, so adding the n-th stream costs
// O(log n + nameChunk) instead of the O(n) of one sorted slice.
const nameChunk = 512

// nameList keeps every stream of an Index in byte order of its name: a list of chunks, each a
// sorted run of references into Index.streams, every name in a chunk below every name in the
// next one. It is maintained by the writers, so listing never sorts.
type nameList struct {
	chunks [][]int32
}

// insert adds the stream streams[ref], whose name is not in the list yet.
func (l *nameList) insert(streams []stream, ref int32) {
	name := streams[ref].name
	if len(l.chunks) == 0 {
		l.chunks = append(l.chunks, []int32{ref})
		return
	}
	c := l.chunkFor(streams, name)
	ch := l.chunks[c]
	i := sort.Search(len(ch), func(i int) bool { return streams[ch[i]].name > name })
	ch = slices.Insert(ch, i, ref)
	if len(ch) <= nameChunk {
		l.chunks[c] = ch
		return
	}
	half := len(ch) / 2
	l.chunks[c] = ch[:half] // keeps its array: the upper half is copied out
	l.chunks = slices.Insert(l.chunks, c+1, slices.Clone(ch[half:]))
}

// chunkFor returns the chunk that holds or would hold name: the last whose first name is
// not above it, or the first chunk.
func (l *nameList) chunkFor(streams []stream, name string) int {
	c := sort.Search(len(l.chunks), func(c int) bool { return streams[l.chunks[c][0]].name > name })
	return max(c-1, 0)
}

// seek returns where the first name above key (or, with inclusive, not below it) is: chunk
// c, offset i, which may be the end of the chunk, where the next chunk goes on.
func (l *nameList) seek(streams []stream, key string, inclusive bool) (c, i int) {
	if len(l.chunks) == 0 {
		return 0, 0
	}
	c = l.chunkFor(streams, key)
	ch := l.chunks[c]
	return c, sort.Search(len(ch), func(i int) bool {
		n := streams[ch[i]].name
		return n > key || inclusive && n == key
	})
}

// fill replaces the list with refs 0..n-1, which must be in name order; chunks are filled
// to half so that the next inserts do not split at once.
func (l *nameList) fill(n int) {
	l.chunks = make([][]int32, 0, (n+nameChunk/2-1)/(nameChunk/2))
	for first := 0; first < n; first += nameChunk / 2 {
		ch := make([]int32, min(nameChunk/2, n-first))
		for i := range ch {
			ch[i] = int32(first + i)
		}
		l.chunks = append(l.chunks, ch)
	}
}

// each calls fn for every reference in name order.
func (l *nameList) each(fn func(ref int32)) {
	for _, ch := range l.chunks {
		for _, ref := range ch {
			fn(ref)
		}
	}
}
