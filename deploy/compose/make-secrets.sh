#!/bin/sh
# Makes the secrets docker-compose.yml reads, once, in deploy/compose/secrets/
# (git-ignored, mode 0600): the PostgreSQL password and the database URL built
# from it, the key-encryption secret that protects the signing keys at rest, and
# Grafana's admin password. Existing files are kept: run it again safely.
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

if [ -e "$dir/postgres.env" ] || [ -e "$dir/userservice.env" ] || [ -e "$dir/grafana.env" ]; then
  echo "secrets already in $dir: kept (delete the files to make new ones)"
  exit 0
fi

password="$(random_hex)"
cat >"$dir/postgres.env" <<END
POSTGRES_PASSWORD=$password
END
cat >"$dir/userservice.env" <<END
USERSERVICE_DATABASE_URL=postgresql+psycopg://userservice:$password@postgres:5432/userservice
USERSERVICE_KEY_ENCRYPTION_SECRET=$(random_hex)
# Until a mail server is set, mails (their secret links included) go to the log.
# USERSERVICE_MAIL_URL=smtps://user:password@smtp.example.com:465
# USERSERVICE_MAIL_FROM=Example <no-reply@example.com>
END
cat >"$dir/grafana.env" <<END
GF_SECURITY_ADMIN_USER=admin
GF_SECURITY_ADMIN_PASSWORD=$(random_hex)
END
echo "made postgres.env, userservice.env and grafana.env in $dir"
