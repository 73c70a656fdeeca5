#!/usr/bin/env bash
# Install the PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) needed by the
# test suite. The tests start their own throwaway cluster on a free loopback port, so
# Debian's default "main" cluster is not wanted: we tell postgresql-common not to create it.
# Idempotent: exits immediately when the binaries are already present.
set -euo pipefail

find_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [[ -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
    done
    return 1
}

if bindir=$(find_bindir); then
    echo "PostgreSQL server binaries already present in $bindir"
    exit 0
fi

manual_hint="install them as root with: apt-get install -y postgresql  (or run this script as root)"
if [[ $EUID -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "error: PostgreSQL server binaries missing and no root/passwordless sudo; $manual_hint" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "error: apt-get not found; install the PostgreSQL server (initdb, pg_ctl) with your package manager" >&2
    exit 1
fi

as_root() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; }
apt_install() { as_root apt-get install -y -q --no-install-recommends "$@"; }

as_root apt-get update -q
# postgresql-common first, so its config can stop the server package from creating
# (and starting) a system cluster on port 5432 during installation.
apt_install postgresql-common
as_root sed -i -E 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
    /etc/postgresql-common/createcluster.conf
apt_install postgresql

bindir=$(find_bindir) || { echo "error: installed postgresql but found no initdb/pg_ctl under /usr/lib/postgresql" >&2; exit 1; }
echo "PostgreSQL server binaries installed in $bindir"
