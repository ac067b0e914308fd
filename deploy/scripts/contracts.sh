#!/usr/bin/env bash
# Provider verification of the consumer-driven contracts (Pact v3) in contracts/pacts.
#
# The Swift consumer tests (Tests/ContractTests, part of `swift test`) write one pact per
# consumer–provider pair. This script replays every interaction of every pact against the real
# provider executable on a throwaway PostgreSQL (deploy/scripts/with-postgres.sh, or
# DATABASE_URL when set), with the official Pact verifier (pact-python 4 and its pact_ffi
# library, from PyPI), setting up each interaction's provider state first
# (deploy/scripts/verify_pacts.py). Any mismatch fails it, naming the interaction.
#
# Executables come from PLATFORM_BIN_DIR, else from `swift build` (built here if needed).
# pact-python goes into a virtualenv under .tmp/pact-tools that is reused while the pins are
# unchanged (delete it to start over; CONTRACT_TOOLS_DIR moves it). Needs python3 and PyPI.
#
#   deploy/scripts/contracts.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

requirements=(
  "pact-python==4.2.0"
  "pact-python-ffi==0.5.12.1"
)
tools="${CONTRACT_TOOLS_DIR:-$root/.tmp/pact-tools}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is required for the contract verification" >&2
  exit 1
fi

# --- Tools (as check-deploy.sh installs its own) ----------------------------------------------

. "$root/deploy/scripts/lib/python-tools.sh"
python_tools "$tools" "${requirements[@]}"
if ! "$python" -c 'import pact, pact_ffi' >/dev/null 2>&1; then
  echo "reinstalling pact-python (it does not import)" >&2
  install_python_tools "$tools" "${requirements[@]}"
  python_tools "$tools" "${requirements[@]}"
fi

# --- Database and executables ------------------------------------------------------------------

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$root/deploy/scripts/contracts.sh" "$@"
fi

if [ -z "${PLATFORM_BIN_DIR:-}" ]; then
  swift build
  PLATFORM_BIN_DIR="$(swift build --show-bin-path)"
fi

# The consumer tests regenerate the pacts; a difference from the committed files is worth a word.
if command -v git >/dev/null 2>&1 && git -C "$root" rev-parse --git-dir >/dev/null 2>&1 \
   && [ -n "$(git -C "$root" status --porcelain -- contracts/pacts 2>/dev/null)" ]; then
  echo "note: contracts/pacts differs from the committed files (the consumer tests changed a pact): commit it" >&2
fi

echo "verifying contracts/pacts against the providers in $PLATFORM_BIN_DIR" >&2
export PACT_DO_NOT_TRACK=true
exec "$python" "$root/deploy/scripts/verify_pacts.py" --pacts "$root/contracts/pacts" --bin "$PLATFORM_BIN_DIR" "$@"
