# shellcheck shell=bash
# Sourced by run.sh, check-deploy.sh and sdk-tests.sh (and any script that wants the platform
# behind one port): the gateway — nginx from Debian with deploy/gateway/gateway.conf.template — started in
# front of services on any ports, and stopped again.
#
#   gateway_start PORT AUTH_URL PROVISIONING_URL REALTIME_URL STORAGE_URL
#       Renders the configuration for those upstreams (each URL http://host:port, as the
#       services' own AUTH_URL … are) into $GATEWAY_DIR (default .tmp/gateway/PORT: its own
#       prefix, pid file and temp folders, so gateways on different ports never share them),
#       checks it with `nginx -t`, and starts nginx in the foreground (`daemon off`) as a
#       background job of the calling shell, in a session of its own (a Ctrl-C meant for the
#       script does not reach it), listening on $GATEWAY_HOST:PORT (127.0.0.1).
#       Error log: $GATEWAY_LOG_DIR/gateway.log, access log (one JSON line per request):
#       $GATEWAY_LOG_DIR/gateway-access.log ($GATEWAY_LOG_DIR defaults to $PLATFORM_LOG_DIR,
#       else .tmp/logs). Then waits until its GET /health answers (at most 10 s). Fails with
#       status 1 and the reason (nothing left running) when nginx is missing, the port is taken,
#       the configuration is refused or nginx does not come up.
#   gateway_stop
#       SIGQUIT (finish the requests in flight), SIGTERM after $GATEWAY_STOP_GRACE seconds
#       (default 10), SIGKILL 5 s later; waits for it. Safe to call again and from a trap.
#   gateway_alive            status 0 while the started nginx runs
#   gateway_url              prints http://HOST:PORT of the started gateway
#
#   gateway_write_config DIR LOG_DIR LISTEN AUTH_URL PROVISIONING_URL REALTIME_URL STORAGE_URL
#       Only writes DIR/nginx.conf (the main file) and DIR/gateway.conf (the rendered template);
#       what gateway_start runs, and what check-deploy.sh tests.
#   gateway_render_template OUT VAR=VALUE...
#       The template rendered like the nginx image does: envsubst of exactly the GATEWAY_*
#       variables given, every other `$name` left for nginx.
#   gateway_nginx            prints the nginx executable (Debian puts it in /usr/sbin, which
#                            is not on every user's PATH), or fails
#
# Call gateway_start from the script's own shell, not inside $(…) or a pipeline, so the shell
# owns the nginx process (as with services_start).

# shellcheck source=deploy/scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

_gateway_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
_gateway_template="$_gateway_root/deploy/gateway/gateway.conf.template"
declare -g _gateway_pid="" _gateway_job="" _gateway_port="" _gateway_host="" _gateway_log=""

gateway_nginx() {
  if command -v nginx >/dev/null 2>&1; then
    command -v nginx
  elif [ -x /usr/sbin/nginx ]; then
    echo /usr/sbin/nginx
  else
    echo "error: nginx is not installed (deploy/scripts/install-deps.sh installs it)" >&2
    return 1
  fi
}

# http://host:port[/] → host:port; anything else (a path, https, no port) is refused.
_gateway_upstream() {
  local url="$1"
  if [[ "$url" =~ ^http://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})/?$ ]]; then
    echo "${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
  else
    echo "error: gateway upstream \"$url\" is not of the form http://host:port" >&2
    return 1
  fi
}

gateway_render_template() {
  local out="$1" assignment names=() values=()
  shift
  for assignment in "$@"; do
    if [[ "$assignment" != GATEWAY_*=?* ]]; then
      echo "error: gateway_render_template: \"$assignment\" is not GATEWAY_NAME=value" >&2
      return 1
    fi
    names+=("\${${assignment%%=*}}")
    values+=("$assignment")
  done
  env "${values[@]}" envsubst "${names[*]}" < "$_gateway_template" > "$out"
  # A variable of the template that was not given would reach nginx as an unknown `$GATEWAY_…`.
  # shellcheck disable=SC2016  # the literal text ${GATEWAY_ is searched for
  if grep -q '\${GATEWAY_' "$out"; then
    # shellcheck disable=SC2016
    echo "error: $out still holds unrendered variables: $(grep -o '\${GATEWAY_[A-Z_]*}' "$out" | sort -u | tr '\n' ' ')" >&2
    return 1
  fi
}

gateway_write_config() {
  local dir="$1" log_dir="$2" listen="$3" auth provisioning realtime storage
  auth="$(_gateway_upstream "$4")" || return 1
  provisioning="$(_gateway_upstream "$5")" || return 1
  realtime="$(_gateway_upstream "$6")" || return 1
  storage="$(_gateway_upstream "$7")" || return 1
  mkdir -p "$dir" "$log_dir" || return 1
  dir="$(cd "$dir" && pwd)"
  log_dir="$(cd "$log_dir" && pwd)"
  gateway_render_template "$dir/gateway.conf" \
    "GATEWAY_LISTEN=$listen" \
    "GATEWAY_ACCESS_LOG=$log_dir/gateway-access.log" \
    "GATEWAY_AUTH_UPSTREAM=$auth" \
    "GATEWAY_PROVISIONING_UPSTREAM=$provisioning" \
    "GATEWAY_REALTIME_UPSTREAM=$realtime" \
    "GATEWAY_STORAGE_UPSTREAM=$storage" || return 1
  # The main file: what the nginx image's own nginx.conf is in compose. Everything nginx would
  # otherwise put under /var/lib/nginx, /run or /var/log (root's, compiled in) is in DIR or
  # LOG_DIR, so it runs as any user. As root, its workers run as `nobody`.
  cat > "$dir/nginx.conf" <<EOF
# Written by deploy/scripts/lib/gateway.sh at every start; edit deploy/gateway/gateway.conf.template.
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $log_dir/gateway.log notice;

events {
    worker_connections 1024;
}

http {
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    include $dir/gateway.conf;
}
EOF
}

gateway_alive() { [ -n "$_gateway_pid" ] && kill -0 "$_gateway_pid" 2>/dev/null; }

gateway_url() { echo "http://$_gateway_host:$_gateway_port"; }

gateway_start() {
  if [ $# -ne 5 ]; then
    echo "usage: gateway_start PORT AUTH_URL PROVISIONING_URL REALTIME_URL STORAGE_URL" >&2
    return 1
  fi
  local port="$1" nginx host="${GATEWAY_HOST:-127.0.0.1}"
  local dir="${GATEWAY_DIR:-$_gateway_root/.tmp/gateway/$port}"
  local log_dir="${GATEWAY_LOG_DIR:-${PLATFORM_LOG_DIR:-$_gateway_root/.tmp/logs}}"
  shift
  if gateway_alive; then
    echo "error: a gateway is already running (pid $_gateway_pid, port $_gateway_port)" >&2
    return 1
  fi
  nginx="$(gateway_nginx)" || return 1
  if ! port_is_free "$port"; then
    echo "error: something already answers on port $port (wanted by the gateway)" >&2
    return 1
  fi
  gateway_write_config "$dir" "$log_dir" "$host:$port" "$@" || return 1
  dir="$(cd "$dir" && pwd)"
  log_dir="$(cd "$log_dir" && pwd)"
  if ! "$nginx" -t -q -p "$dir" -e "$log_dir/gateway.log" -c "$dir/nginx.conf"; then
    echo "error: nginx refused the gateway configuration ($dir/nginx.conf); see above" >&2
    return 1
  fi
  # In a session of its own: a Ctrl-C in the terminal reaches the script (whose trap stops the
  # gateway, then the services) but not nginx, which would otherwise quit at once and look
  # like a crash. nginx writes its master's pid to DIR/nginx.pid: that pid is the one signalled
  # (the job's own, unless setsid had to fork).
  rm -f "$dir/nginx.pid"
  # shellcheck disable=SC2094  # nginx and its stderr both append to the error log (O_APPEND)
  setsid "$nginx" -p "$dir" -e "$log_dir/gateway.log" -c "$dir/nginx.conf" >>"$log_dir/gateway.log" 2>&1 &
  _gateway_job=$!
  _gateway_pid=$!
  _gateway_port="$port"
  _gateway_host="$host"
  _gateway_log="$log_dir/gateway.log"
  local deadline=$(( ${EPOCHREALTIME//[!0-9]/} + 10000000 )) master
  until curl -fsS --max-time 2 -o /dev/null "http://$host:$port/health" 2>/dev/null; do
    master="$(cat "$dir/nginx.pid" 2>/dev/null || true)"
    if [ -n "$master" ]; then _gateway_pid="$master"; fi
    if ! gateway_alive || [ "${EPOCHREALTIME//[!0-9]/}" -ge "$deadline" ]; then
      echo "error: the gateway did not come up on $host:$port; last lines of $_gateway_log:" >&2
      tail -n 20 "$_gateway_log" >&2
      gateway_stop
      return 1
    fi
    sleep 0.1
  done
  master="$(cat "$dir/nginx.pid" 2>/dev/null || true)"
  if [ -n "$master" ]; then _gateway_pid="$master"; fi
}

gateway_stop() {
  local pid="$_gateway_pid" grace="${GATEWAY_STOP_GRACE:-10}" deadline workers=()
  [ -n "$pid" ] || [ -n "$_gateway_job" ] || return 0
  _gateway_pid=""
  if kill -0 "$pid" 2>/dev/null; then
    # QUIT: graceful (stop accepting, finish what is in flight). Open websockets would keep
    # it waiting, hence TERM (fast: close everything) after the grace period.
    kill -QUIT "$pid" 2>/dev/null || true
    deadline=$(( ${EPOCHREALTIME//[!0-9]/} + grace * 1000000 ))
    while kill -0 "$pid" 2>/dev/null && [ "${EPOCHREALTIME//[!0-9]/}" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      deadline=$(( ${EPOCHREALTIME//[!0-9]/} + 5000000 ))
      while kill -0 "$pid" 2>/dev/null && [ "${EPOCHREALTIME//[!0-9]/}" -lt "$deadline" ]; do sleep 0.1; done
    fi
    if kill -0 "$pid" 2>/dev/null; then
      echo "warning: the gateway (nginx, pid $pid) did not stop; sending SIGKILL to it and its workers" >&2
      # A killed master leaves its workers running: they are its children, by pid.
      mapfile -t workers < <(pgrep -P "$pid" || true)
      kill -KILL "$pid" "${workers[@]}" 2>/dev/null || true
    fi
  fi
  wait "$_gateway_job" 2>/dev/null || true
  _gateway_job=""
}
