package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestProcessIDInPath: a process id in a path that is not valid UTF-8 is refused with
// 400 bad_request naming the field, as a stream name is, and never asked of the
// Processes; an id longer than any stream name is answered 404 with only its first
// bytes and its length in the message. A non-UTF-8 id was 404, and a long one was
// echoed whole into the message (and the log).
func TestProcessIDInPath(t *testing.T) {
	e := newEnv(t, Options{Processes: &fakeProcesses{}})
	command := uuid.New()
	for _, route := range []struct{ method, path string }{
		{"GET", "/v1/processes/M/%s"},
		{"POST", "/v1/processes/M/%s/commands/" + command.String() + "/retry"},
		{"POST", "/v1/processes/M/%s/commands/" + command.String() + "/skip"},
	} {
		r := e.do(route.method, fmt.Sprintf(route.path, "a%FFb"), nil).mustError(t, http.StatusBadRequest, codeBadRequest)
		if msg := fmt.Sprint(r.body["message"]); !strings.HasPrefix(msg, "id ") || !strings.Contains(msg, "not valid UTF-8") {
			t.Errorf("%s %s: message %q, want it to name the id and say it is not valid UTF-8", route.method, route.path, msg)
		}

		long := strings.Repeat("x", 5000)
		r = e.do(route.method, fmt.Sprintf(route.path, long), nil).mustError(t, http.StatusNotFound, codeNotFound)
		msg := fmt.Sprint(r.body["message"])
		if len(msg) > 300 || !strings.Contains(msg, "5000 bytes") || !strings.Contains(msg, "xxxx") {
			t.Errorf("%s %s: message %q (%d bytes), want the id's first bytes and its length", route.method, route.path, msg, len(msg))
		}
	}
}
