#!/usr/bin/env bash
# Install the MariaDB server binaries (mariadb-install-db, mariadbd, the mariadb client) needed by
# the test suite.  The tests start their own throwaway server in a temp directory on a free
# loopback port; Debian's system service is never used, so it is stopped and disabled if the
# package installation started it.  Idempotent: exits at once when the binaries are present.
set -euo pipefail

have_binaries() { command -v mariadb-install-db >/dev/null && { command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]]; }; }

if have_binaries; then
    echo "MariaDB server binaries already present ($(command -v mariadb-install-db))"
    exit 0
fi

manual_hint="install them as root with: apt-get install -y mariadb-server  (or run this script as root)"
if [[ $EUID -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "error: MariaDB server binaries missing and no root/passwordless sudo; $manual_hint" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "error: apt-get not found; install the MariaDB server (mariadb-install-db, mariadbd) with your package manager" >&2
    exit 1
fi

as_root() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; }

# policy-rc.d exit 101 tells Debian's maintainer scripts not to start services: the package
# must not start a system server (the tests never use one).  Only created when absent, and
# removed again afterwards.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && as_root rm -f "$policy"' EXIT

as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends mariadb-server mariadb-client

have_binaries || { echo "error: installed mariadb-server but found no mariadb-install-db/mariadbd" >&2; exit 1; }
echo "MariaDB server binaries installed ($(command -v mariadb-install-db))"
