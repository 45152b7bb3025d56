#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries for the peer benchmarks
# (bench/peers), unless an initdb is already under /usr/lib/postgresql/*/bin.
# Idempotent and quick when PostgreSQL is there; non-interactive; needs root (or
# sudo) only when it has something to install. It creates no cluster and starts
# no server: the benchmarks initdb a throw-away cluster of their own.
set -euo pipefail

if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "install-postgres: PostgreSQL is missing and installing it needs root (or sudo)" >&2
		exit 1
	fi
	sudo="sudo -n"
fi

# Debian's package would otherwise create and start a "main" cluster we never use.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
	$sudo mkdir -p /etc/postgresql-common
	echo 'create_main_cluster = false' | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends postgresql

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	echo "install-postgres: installed postgresql, but found no /usr/lib/postgresql/*/bin/initdb" >&2
	exit 1
fi
