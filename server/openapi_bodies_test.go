package server

import "testing"

// TestOpenAPIBodiesCanBeTooLarge: every operation that takes a body answers 413
// payload_too_large for one over --max-body, and the document says so (DELETE of a
// stream, PUT of its metadata and POST /v1/cluster/nodes left it to "default").
func TestOpenAPIBodiesCanBeTooLarge(t *testing.T) {
	doc := loadOpenAPI(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil && op.Responses.Value("413") == nil {
				t.Errorf("%s %s takes a body but lists no 413 answer", method, path)
			}
		}
	}
}
