package pmd

// EncodeData encodes an event's data (or metadata) as the store keeps it: msgpack, nil
// for none (nil or empty). Its length is what the data takes in the store; DecodeData
// reads it back as a read of the event would.
func EncodeData(m map[string]any) ([]byte, error) { return encodeMap(m) }

// DecodeData decodes data encoded by EncodeData as every read of an event decodes its
// data: an empty map for none.
func DecodeData(b []byte) (map[string]any, error) { return decodeMap(b) }
