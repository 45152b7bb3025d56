package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a request body's JSON, so that a hostile body cannot
// exhaust the stack of the recursive parser.
const maxDepth = 256

// parseJSON parses one JSON value strictly, as the contract asks of request bodies:
// a key twice in one object, a string that is not valid UTF-8 (raw, or a lone UTF-16
// surrogate escape), an integer outside int64/uint64 and a number beyond float64 are
// refused, each with the path of the value in the message (events[2].data.n). encoding/json
// would keep the last of two keys, replace bad UTF-8 by U+FFFD and round big integers,
// all without a word.
//
// Objects become map[string]any, arrays []any; integers (no fraction, no exponent)
// int64, or uint64 above the int64 range; other numbers float64.
func parseJSON(data []byte) (any, error) {
	return (&parser{data: data}).parse()
}

// parseBody is parseJSON for a request's body: the values it makes are reserved of the
// memory budget as they are made (reservation.take), for they may hold many times the
// body's bytes, as much as 40 times for small objects ({"a":0} is 8 bytes of JSON and a
// map of about 300). The body's own reservation counts for the first of them: a body
// and its values hold the larger of the two, so that a body of long strings, whose
// values hold about its bytes, fits the budget as its bytes did. A body whose values
// the budget has no room for is refused as one whose bytes do not fit, with
// unavailable.
func parseBody(ctx context.Context, data []byte) (any, error) {
	p := &parser{data: data}
	if res := reservationOf(ctx); res != nil {
		p.charge = func(n int64) error { return res.take(ctx, n) }
		p.held = -int64(len(data))
	}
	return p.parse()
}

func (p *parser) parse() (any, error) {
	p.space()
	if p.pos == len(p.data) {
		return nil, errBadRequest("malformed JSON: the request body is empty")
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.data) {
		return nil, p.fail("more data after the JSON value")
	}
	if err := p.hold(0, true); err != nil {
		return nil, err
	}
	return v, nil
}

// parser is the state of parseJSON. path holds the keys (string) and indexes (int) of
// the value being parsed, rendered only when an error names it.
type parser struct {
	data []byte
	pos  int
	path []any
	// charge, when set, reserves bytes that the values parsed hold (parseBody); held
	// counts those not yet reserved, which are reserved in steps of chargeStep, less
	// the body's bytes, already reserved.
	charge func(n int64) error
	held   int64
}

// The bytes a parsed value holds on the heap (Go 1.26, amd64, rounded up), for the
// memory budget: an element of an array is an interface in its slice, which grows by
// doubling; a member of an object is a slot of a map, which holds groups of 8 slots
// filled at most 7/8 and doubles as it grows; a string, a number or an array or object
// put in an interface is allocated on its own.
const (
	elementBytes  = 32     // an array's slot, 16, twice for the room a slice grows into
	arrayBytes    = 24     // a slice header in an interface
	objectBytes   = 48     // a map's header
	memberBytes   = 80     // a map's slot (key and value, 32), and its share of room to grow
	minGroupBytes = 8 * 40 // a map's first group, 8 slots, however few it fills
	stringBytes   = 16     // a string header in an interface, and then its bytes
	numberBytes   = 8
	chargeStep    = 64 << 10
)

// hold counts n bytes of parsed values, reserving what is counted once it reaches
// chargeStep, or at once when flush is set (the end of the body).
func (p *parser) hold(n int64, flush bool) error {
	if p.charge == nil {
		return nil
	}
	p.held += n
	if p.held <= 0 || p.held < chargeStep && !flush {
		return nil
	}
	n, p.held = p.held, 0
	return p.charge(n)
}

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// where renders the path of the value being parsed: events[2].data.n.
func (p *parser) where() string { return renderPath(p.path) }

func renderPath(path []any) string {
	var b strings.Builder
	for _, s := range path {
		switch s := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

// fail is a syntax error at the current byte.
func (p *parser) fail(what string) error {
	at := ""
	if w := p.where(); w != "" {
		at = " in " + w
	}
	if p.pos >= len(p.data) {
		return errBadRequest("malformed JSON%s: the body ends too early: %s", at, what)
	}
	return errBadRequest("malformed JSON at byte %d%s: %s", p.pos, at, what)
}

// invalid is a well-formed value that the contract refuses.
func (p *parser) invalid(format string, a ...any) error {
	w := p.where()
	if w == "" {
		w = "the body"
	}
	return errBadRequest("%s: %s", w, fmt.Sprintf(format, a...))
}

func (p *parser) value() (any, error) {
	if len(p.path) > maxDepth {
		return nil, p.invalid("nested deeper than %d levels", maxDepth)
	}
	p.space()
	if p.pos >= len(p.data) {
		return nil, p.fail("want a value")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		return v, p.hold(stringBytes+int64(len(v.(string))), false)
	case c == '-' || c >= '0' && c <= '9':
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		return v, p.hold(numberBytes, false)
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	default:
		return nil, p.fail(fmt.Sprintf("unexpected %s", quoteByte(c)))
	}
}

func quoteByte(c byte) string {
	if c < utf8.RuneSelf && strconv.IsPrint(rune(c)) {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (p *parser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *parser) object() (any, error) {
	p.pos++ // {
	obj := map[string]any{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, p.hold(objectBytes, false)
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("want a quoted object key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		p.path = append(p.path, key)
		if _, dup := obj[key]; dup {
			return nil, p.invalid("the key is given twice in one object")
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("want ':' after an object key")
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		obj[key] = v
		if err := p.hold(memberBytes+int64(len(key)), false); err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		p.space()
		if p.pos >= len(p.data) {
			return nil, p.fail("want ',' or '}'")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			// A map with a member holds a group of 8 slots at least.
			return obj, p.hold(objectBytes+max(0, minGroupBytes-int64(len(obj))*memberBytes), false)
		default:
			return nil, p.fail("want ',' or '}' after an object member")
		}
	}
}

func (p *parser) array() (any, error) {
	p.pos++ // [
	arr := []any{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return arr, p.hold(arrayBytes, false)
	}
	for i := 0; ; i++ {
		p.path = append(p.path, i)
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		arr = append(arr, v)
		if err := p.hold(elementBytes, false); err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.data) {
			return nil, p.fail("want ',' or ']'")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, p.hold(arrayBytes, false)
		default:
			return nil, p.fail("want ',' or ']' after an array element")
		}
	}
}

// str parses a string at p.pos (at its opening quote). It returns any so that the
// common case, a string value, needs no conversion at the call site.
func (p *parser) str() (any, error) {
	p.pos++ // "
	start := p.pos
	// The fast path: no escapes, valid UTF-8.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			if !utf8.Valid(s) {
				p.pos = start + invalidUTF8At(s)
				return nil, p.invalid("a string that is not valid UTF-8 (at byte %d)", p.pos)
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, p.fail(fmt.Sprintf("a control character (%s) in a string: escape it", quoteByte(c)))
		}
		p.pos++
	}
	b := append([]byte(nil), p.data[start:p.pos]...)
	for {
		// Copy the run of plain bytes up to the next quote, escape or control character.
		run := p.pos
		for p.pos < len(p.data) && p.data[p.pos] != '"' && p.data[p.pos] != '\\' && p.data[p.pos] >= 0x20 {
			p.pos++
		}
		b = append(b, p.data[run:p.pos]...)
		if p.pos >= len(p.data) {
			return nil, p.fail("an unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(b) {
				return nil, p.invalid("a string that is not valid UTF-8")
			}
			return string(b), nil
		case c < 0x20:
			return nil, p.fail(fmt.Sprintf("a control character (%s) in a string: escape it", quoteByte(c)))
		}
		if p.pos+1 >= len(p.data) {
			return nil, p.fail("an unterminated string")
		}
		p.pos++
		switch e := p.data[p.pos]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				// A surrogate escape is valid only as the first half of a pair
				// followed at once by the second.
				r2 := rune(-1)
				if p.pos+2 < len(p.data) && p.data[p.pos+1] == '\\' && p.data[p.pos+2] == 'u' {
					p.pos += 2
					if r2, err = p.hex4(); err != nil {
						return nil, err
					}
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, p.invalid("a string that is not valid UTF-8 (a lone UTF-16 surrogate escape)")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return nil, p.fail(fmt.Sprintf("an unknown escape \\%c in a string", e))
		}
		p.pos++
	}
}

// hex4 reads the four hex digits after \u, leaving p.pos on the last one.
func (p *parser) hex4() (rune, error) {
	if p.pos+4 >= len(p.data) {
		return 0, p.fail("a \\u escape needs four hex digits")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos+1:p.pos+5]), 16, 16)
	if err != nil {
		return 0, p.fail("a \\u escape needs four hex digits")
	}
	p.pos += 4
	return rune(n), nil
}

// invalidUTF8At is the offset of the first invalid UTF-8 sequence in s.
func invalidUTF8At(s []byte) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(s)
}

// number parses a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() (any, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	intStart := p.pos
	if n := digits(); n == 0 {
		return nil, p.fail("want a digit in a number")
	} else if n > 1 && p.data[intStart] == '0' {
		p.pos = intStart
		return nil, p.fail("a number with a leading zero")
	}
	integer := true
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		integer = false
		p.pos++
		if digits() == 0 {
			return nil, p.fail("want a digit after the decimal point")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		integer = false
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.fail("want a digit in the exponent")
		}
	}
	text := string(p.data[start:p.pos])
	if integer {
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			return u, nil
		}
		return nil, p.invalid("the integer %s is outside the 64-bit range (-2^63 to 2^64-1); in event data, send it as a string", text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) {
		return nil, p.invalid("the number %s is outside the range of a 64-bit float", text)
	}
	// An underflow to zero (1e-400) is kept as 0, as every JSON reader does.
	return f, nil
}
