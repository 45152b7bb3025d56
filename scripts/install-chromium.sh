#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (web/), unless /usr/bin/chromium is
# already there. Idempotent and quick when it is; non-interactive; needs root (or sudo)
# only when it has something to install. Without chromium the browser tests skip
# themselves and say why; every other test runs.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "install-chromium: chromium is missing and installing it needs root (or sudo)" >&2
		exit 1
	fi
	sudo="sudo -n"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q chromium

if [ ! -x /usr/bin/chromium ]; then
	echo "install-chromium: installed chromium, but /usr/bin/chromium is missing" >&2
	exit 1
fi
