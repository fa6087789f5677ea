#!/bin/sh
# The official postgres image's first start, in short: an empty PGDATA gets a cluster whose
# superuser is POSTGRES_USER (password POSTGRES_PASSWORD, scram over TCP) and a POSTGRES_DB.
set -eu
bin=/usr/lib/postgresql/15/bin
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: POSTGRES_PASSWORD is empty" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    "$bin/initdb" --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" --pgdata="$PGDATA" --wait --options="-c listen_addresses=''" start
    if [ "$POSTGRES_DB" != postgres ]; then
        "$bin/createdb" --username="$POSTGRES_USER" "$POSTGRES_DB"
    fi
    "$bin/pg_ctl" --pgdata="$PGDATA" --wait --mode=fast stop
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
