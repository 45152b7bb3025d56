#!/usr/bin/env bash
# Checks that $GO (default: go on PATH; make passes its GO) is Go 1.21 or later, which
# downloads the Go go.mod names by itself (GOTOOLCHAIN=auto), and says what to do when it
# is missing or older (Debian 12's golang-go is 1.19). make build (so make run) and
# install-build-tools.sh (make deps, make test) run it first.
set -euo pipefail

go=${GO:-go}
if ! command -v "$go" >/dev/null; then
	echo "pmd: no $go (GO=${GO:-unset}): pmd needs Go 1.21 or later on PATH (e.g. /usr/local/go/bin) or named by make GO=/path/to/go" >&2
	exit 1
fi
version=$("$go" env GOVERSION 2>/dev/null || true)
case "$version" in
go1.[0-9] | go1.[0-9].* | go1.1[0-9] | go1.1[0-9].* | go1.20 | go1.20.* | "")
	echo "pmd: $(command -v "$go") is ${version:-too old to say its version}: pmd needs Go 1.21 or later, which downloads the Go go.mod names by itself" >&2
	exit 1
	;;
esac
