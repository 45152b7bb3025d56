// Package browsertest drives Debian's chromium headless through the browser pages of a
// real `pmd serve` (package web) with the catering example's config.
//
// It is a module of its own so that chromedp, which only these tests need, is not a
// requirement of github.com/pmd-dev/pmd: a program that imports pmd does not download
// it. Run it with `make test`, or here with `go test ./...`; PMD_SCREENSHOTS=shots
// writes screenshots of the stream, event and process pages to shots/TestBrowser/.
// Without /usr/bin/chromium (scripts/install-chromium.sh installs it) the tests skip
// and say so.
package browsertest
