#!/usr/bin/env bash
# Storage's throughput beside nginx (Debian's) on the same disk, in the same run: upload and
# download MiB/s for 10 MiB and 1 GiB objects (curl streaming a file: POST to storage's Storage
# API, PUT to nginx's WebDAV; GET from both), storage's resident memory during the 1 GiB
# transfers, and requests/s for 4 KiB GETs (wrk, keep-alive). Each figure is the median of the
# rounds, storage and nginx alternating; the ratios are storage/nginx. Release build;
# throwaway PostgreSQL unless DATABASE_URL is set; installs wrk (Debian) when missing.
#
#   deploy/scripts/bench-storage.sh [rounds=3] [seconds=10] [connections=32]
#
# SCRATCH=.build-bench builds in another directory; BENCH_KEEP_WORK=1 keeps the work folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rounds="${1:-3}" seconds="${2:-10}" connections="${3:-32}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian) for the 4 KiB GETs" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin S

# nginx on the same disk: a document root for GETs, WebDAV PUT for uploads (its request body
# goes to a temporary file on the same disk, then is renamed into place, as storage's does).
nginx_port="$(pick_port)"
mkdir -p "$work/nginx/root" "$work/nginx/body" "$work/nginx/logs"
# Started as root, nginx's workers run as www-data: they need to reach and write these.
user_line=""
if [ "$(id -u)" = 0 ]; then chmod 711 "$work"; chown -R www-data "$work/nginx"; user_line="user www-data;"; fi
cat > "$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    client_max_body_size 0;
    proxy_temp_path $work/nginx/body;
    fastcgi_temp_path $work/nginx/body;
    uwsgi_temp_path $work/nginx/body;
    scgi_temp_path $work/nginx/body;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/nginx/root;
        location / { dav_methods PUT; create_full_put_path on; }
    }
}
CONF
nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log"
trap 'nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" -s stop 2>/dev/null || true; bench_cleanup' EXIT

log "storage (pid ${_service_pid[storage]}) on $STORAGE_URL, nginx on 127.0.0.1:$nginx_port, files under $work"
python3 "$here/bench_storage.py" --storage "$STORAGE_URL" --auth "$AUTH_URL" --provisioning "$PROVISIONING_URL" \
  --token "$INTERNAL_SERVICE_TOKEN" --storage-pid "${_service_pid[storage]}" --nginx "http://127.0.0.1:$nginx_port" \
  --nginx-root "$work/nginx/root" --work "$work" --rounds "$rounds" --seconds "$seconds" --connections "$connections" \
  --database "$DATABASE_URL"
