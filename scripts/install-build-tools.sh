#!/usr/bin/env bash
# Installs what make test needs beside Go, from Debian's packages, unless it is already
# there: gcc (go test -race needs cgo) and git (make lint lists the Go files with git
# ls-files). Idempotent and quick when both are there; non-interactive; needs root (or
# sudo) only when it has something to install. It installs no Go: Go 1.21 or later must be
# on PATH (it downloads the version go.mod names by itself, GOTOOLCHAIN=auto), and this
# says so when the go found is missing or older.
set -euo pipefail

if ! command -v go >/dev/null; then
	echo "install-build-tools: no go on PATH: pmd needs Go 1.21 or later (e.g. /usr/local/go/bin)" >&2
	exit 1
fi
version=$(go env GOVERSION 2>/dev/null || true)
case "$version" in
go1.[0-9] | go1.[0-9].* | go1.1[0-9] | go1.1[0-9].* | go1.20 | go1.20.* | "")
	echo "install-build-tools: $(command -v go) is ${version:-too old to say its version}: pmd needs Go 1.21 or later, which downloads the Go go.mod names by itself" >&2
	exit 1
	;;
esac

missing=()
command -v gcc >/dev/null || missing+=(gcc)
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

for tool in "${missing[@]}"; do
	if ! command -v "$tool" >/dev/null; then
		echo "install-build-tools: installed $tool, but it is not on PATH" >&2
		exit 1
	fi
done
