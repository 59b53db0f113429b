#!/bin/sh
# Run by the official nginx image before nginx starts (/docker-entrypoint.d/):
# when no certificate is at NGINX_TLS_CERT yet, makes a self-signed one (P-256,
# one year) for NGINX_TLS_SELF_SIGNED_NAME (default localhost), so `docker compose
# up` serves HTTPS at once. Replace it with a real certificate by putting one at
# those paths (the volume keeps it); this script then leaves it alone.
set -eu

cert="${NGINX_TLS_CERT:?}"
key="${NGINX_TLS_KEY:?}"
if [ -s "$cert" ] && [ -s "$key" ]; then
  exit 0
fi
name="${NGINX_TLS_SELF_SIGNED_NAME:-localhost}"
names="DNS:$name"
[ "$name" = localhost ] || names="$names,DNS:localhost"
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=$name" -addext "subjectAltName=$names,IP:127.0.0.1" \
  -keyout "$key" -out "$cert" 2>/dev/null
chmod 644 "$cert"
echo "$0: made a self-signed certificate for $name at $cert; replace it with a real one"
