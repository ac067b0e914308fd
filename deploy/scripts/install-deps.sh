#!/usr/bin/env bash
# Installs the Debian packages the platform builds and tests with, when they are missing.
# Safe to run again: it installs nothing when everything is present.
set -euo pipefail

packages=(
  pkg-config          # SwiftPM finds libpq through it
  libpq-dev           # PostgreSQL client library (the Postgres kit)
  libcurl4-openssl-dev  # libcurl (the HTTP client kit)
  libargon2-dev       # argon2id password hashing
  postgresql          # a server for the local run and the tests
  curl                # readiness probes in the scripts
  nginx               # the gateway in run.sh, and `nginx -t` of its config in check-deploy.sh
  gettext-base        # envsubst: renders the gateway's config template, as the nginx image does
  ca-certificates
  python3             # the offline deployment checks (check-deploy.sh) …
  python3-venv        # … install their tools from PyPI into a virtualenv
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "error: missing packages (${missing[*]}) and no root or sudo to install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
