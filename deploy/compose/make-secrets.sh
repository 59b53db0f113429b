#!/bin/sh
# Makes the secrets docker-compose.yml reads, in deploy/compose/secrets/
# (git-ignored, mode 0600): the PostgreSQL password and the database URL built
# from it, the key-encryption secret that protects the signing keys at rest, and
# Grafana's admin password. Each file is made only if it is missing and existing
# ones are kept (a new database password would lock the service out of a
# database initialised with the old one): run it again safely, or delete one
# file to make it anew.
#
#   sh deploy/compose/make-secrets.sh [directory]
set -eu

dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
umask 077

random_hex() {
  # 32 random bytes as 64 hex digits: safe in URLs and env files alike.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

made=""
kept=""

# The database URL in userservice.env and POSTGRES_PASSWORD must agree: a
# missing one of the two is made from the other.
if [ -e "$dir/postgres.env" ]; then
  kept="$kept postgres.env"
  password="$(sed -n 's/^POSTGRES_PASSWORD=//p' "$dir/postgres.env" | head -n 1)"
else
  password=""
  if [ -e "$dir/userservice.env" ]; then
    password="$(sed -n 's|^USERSERVICE_DATABASE_URL=[^:]*://userservice:\([^@]*\)@.*|\1|p' \
      "$dir/userservice.env" | head -n 1)"
  fi
  [ -n "$password" ] || password="$(random_hex)"
  printf 'POSTGRES_PASSWORD=%s\n' "$password" >"$dir/postgres.env"
  made="$made postgres.env"
fi

if [ -e "$dir/userservice.env" ]; then
  kept="$kept userservice.env"
else
  if [ -z "$password" ]; then
    echo "no POSTGRES_PASSWORD= line in $dir/postgres.env: cannot build the database URL" >&2
    exit 1
  fi
  # Written under a temporary name and renamed: an interrupted run leaves no
  # half-written file that a later run would keep.
  cat >"$dir/userservice.env.tmp" <<END
USERSERVICE_DATABASE_URL=postgresql+psycopg://userservice:$password@postgres:5432/userservice
USERSERVICE_KEY_ENCRYPTION_SECRET=$(random_hex)
# Until a mail server is set, mails (their secret links included) go to the log.
# USERSERVICE_MAIL_URL=smtps://user:password@smtp.example.com:465
# USERSERVICE_MAIL_FROM=Example <no-reply@example.com>
END
  mv "$dir/userservice.env.tmp" "$dir/userservice.env"
  made="$made userservice.env"
fi

if [ -e "$dir/grafana.env" ]; then
  kept="$kept grafana.env"
else
  printf 'GF_SECURITY_ADMIN_USER=admin\nGF_SECURITY_ADMIN_PASSWORD=%s\n' "$(random_hex)" \
    >"$dir/grafana.env"
  made="$made grafana.env"
fi

[ -z "$made" ] || echo "made:$made (in $dir)"
[ -z "$kept" ] || echo "kept:$kept (delete a file to make it anew)"
