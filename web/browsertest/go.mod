module github.com/pmd-dev/pmd/web/browsertest

go 1.26.0

require github.com/pmd-dev/pmd v0.0.0-00010101000000-000000000000

// The browser tests test this checkout of pmd, not a published version.
replace github.com/pmd-dev/pmd => ../..

require (
	github.com/chromedp/cdproto v0.0.0-20250403032234-65de8f5d025b
	github.com/chromedp/chromedp v0.13.6
)

require (
	github.com/chromedp/sysutil v1.1.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20250211171154-1ae217ad3535 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.4.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
