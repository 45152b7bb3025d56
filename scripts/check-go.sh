#!/usr/bin/env bash
# Checks that $GO (default: go on PATH; make passes its GO) is Go 1.21 or later, which
# downloads the Go go.mod names by itself (GOTOOLCHAIN=auto), and says what to do when it
# is missing or older (Debian 12's golang-go is 1.19). make build (so make run) and
# install-build-tools.sh (make deps, make test) run it first.
set -euo pipefail

go=${GO:-go}
if ! command -v "$go" >/dev/null; then
	if [[ $go == */* ]]; then
		where="no $go, which GO names"
	else
		where="no $go on PATH"
	fi
	echo "pmd: $where: pmd needs Go 1.21 or later on PATH (e.g. /usr/local/go/bin) or named by make GO=/path/to/go" >&2
	exit 1
fi
# The version is go1.N, go1.N.P or a pre-release, go1.NrcR or go1.NbetaB, which comes before
# go1.N.0 but is already of Go 1.N: only N says whether this go downloads the Go go.mod
# names (go1.21rc2, the first 1.21 published, does). A development build says
# "devel go1.N-..." and is taken for what it says.
version=$("$go" env GOVERSION 2>/dev/null || true)
if [[ ! $version =~ ^(devel )?go1\.([0-9]+)([^0-9]|$) ]] || ((10#${BASH_REMATCH[2]} < 21)); then
	echo "pmd: $(command -v "$go") is ${version:-too old to say its version}: pmd needs Go 1.21 or later, which downloads the Go go.mod names by itself" >&2
	exit 1
fi
