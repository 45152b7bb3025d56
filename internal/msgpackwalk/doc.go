// Package msgpackwalk walks msgpack bytes item by item without decoding them: what
// each item is, its length or entries, and where it lies, so that a caller can check
// or measure data (pmd's check of a replicated write's maps, the server's bound of the
// memory a decode takes) without building the values.
//
// A Walker reads one msgpack value, with every item nested in it, and nothing after
// it: Next moves to each item (Item) in the order they are stored, each container's
// header before its items, and is false once the value is whole, Offset then where
// what follows it begins, or at an error (Err). Items are framed as the msgpack specification says, and nothing
// more is checked: a string's bytes need not be UTF-8, an extension's type and data
// are not read, a map may hold any keys. What Next promises:
//
//   - every Item's Body lies inside the bytes walked, and Offset never passes their end;
//   - bytes that end inside an item, or a container with more items than follow, are an
//     *Error matching ErrShort, and code 0xc1, which msgpack never uses, one matching
//     ErrCode; Next stays false after an error;
//   - the walk holds no more memory than its nesting depth takes: a header saying 2^32
//     entries allocates nothing, and only nesting past 16 containers allocates;
//   - what it walks to the end, msgpack's own decoder frames the same way (FuzzWalk).
package msgpackwalk
