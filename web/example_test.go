package web_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
	"github.com/pmd-dev/pmd/web"
)

// The browser is mounted at "/" of the API server; it calls the API under /v1/ from
// the same origin.
func Example() {
	dir, err := os.MkdirTemp("", "pmd-web-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := pmd.Open(dir, pmd.Options{NoSync: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ts := httptest.NewServer(server.New(store, server.Options{Browser: web.Handler()}))
	defer ts.Close()

	res, err := http.Get(ts.URL + "/")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
