#!/usr/bin/env bash
# Installs what make test needs beside Go, from Debian's packages, unless it is already
# there: a C toolchain that can build cgo (go test -race needs it: gcc and libc6-dev, whose
# headers and crt1.o runtime/cgo needs; Debian's gcc only recommends libc6-dev) and git
# (make lint lists the Go files with git ls-files). Whether cgo works is checked by
# building a tiny cgo program, not by looking for a gcc binary. Idempotent and quick when
# all is there; non-interactive; needs root (or sudo) only when it has something to
# install. It installs no Go: $GO (default: go on PATH; make passes its GO) must be Go 1.21
# or later (it downloads the version go.mod names by itself, GOTOOLCHAIN=auto), and
# check-go.sh says so when that go is missing or older.
set -euo pipefail

go=${GO:-go}
bash "$(dirname "$0")/check-go.sh"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/main.go" <<'GO'
package main

// #include <stdlib.h>
import "C"

func main() { C.free(C.malloc(1)) }
GO

# cgo_builds builds the probe with cgo on, outside any module (GOFLAGS cleared so that a
# -mod flag meant for pmd does not apply to it), keeping the compiler's output in
# $probe/cgo.log to show when it still fails after installing.
cgo_builds() {
	(cd "$probe" && CGO_ENABLED=1 GOFLAGS= GO111MODULE=off "$go" build -o "$probe/probe" main.go) >"$probe/cgo.log" 2>&1
}

missing=()
cgo_builds || missing+=(gcc libc6-dev)
command -v git >/dev/null || missing+=(git)
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "install-build-tools: ${missing[*]} missing and installing needs root (or sudo)" >&2
		exit 1
	fi
	sudo="sudo -n"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

if [[ " ${missing[*]} " == *" gcc "* ]] && ! cgo_builds; then
	echo "install-build-tools: installed gcc and libc6-dev, but $go still cannot build cgo (go test -race needs it):" >&2
	cat "$probe/cgo.log" >&2
	exit 1
fi
if [[ " ${missing[*]} " == *" git "* ]] && ! command -v git >/dev/null; then
	echo "install-build-tools: installed git, but it is not on PATH" >&2
	exit 1
fi
