# Sourced by check-deploy.sh, contracts.sh, fuzz.sh and sdk-tests.sh: pinned PyPI tools in a folder of their
# own, never in the system's Python.
#
#   python_tools DIR REQUIREMENT...
#
# installs the requirements into DIR when they changed or nothing is there, and sets
# `tools_bin` (the tools' executables) and `python` (an interpreter that imports them). A
# virtualenv when python3 can make one with pip in it; otherwise (Debian's python3 without
# python3-venv has no ensurepip) `pip install --target`, with PYTHONPATH exported.
# `install_python_tools DIR REQUIREMENT...` reinstalls (a broken install), then call
# python_tools again.

install_python_tools() {
  local tools="$1"
  shift
  rm -rf "$tools"
  mkdir -p "$tools"
  export PIP_ROOT_USER_ACTION=ignore
  local pip_args=(install --quiet --disable-pip-version-check --no-input --retries 5 --timeout 60)
  if python3 -m venv "$tools/venv" >/dev/null 2>&1 && [ -x "$tools/venv/bin/pip" ]; then
    "$tools/venv/bin/pip" "${pip_args[@]}" "$@"
    echo venv > "$tools/kind"
  else
    rm -rf "$tools/venv"
    if ! python3 -m pip --version >/dev/null 2>&1; then
      echo "error: python3 has neither venv with ensurepip nor pip; install python3-venv or python3-pip" >&2
      exit 1
    fi
    # --target also skips PEP 668's "externally managed" refusal: nothing goes into the system.
    python3 -m pip "${pip_args[@]}" --target "$tools/site" "$@"
    echo target > "$tools/kind"
  fi
  printf '%s\n' "$@" > "$tools/requirements.txt"
}

python_tools() {
  local tools="$1"
  shift
  if [ ! -f "$tools/requirements.txt" ] || [ "$(cat "$tools/requirements.txt")" != "$(printf '%s\n' "$@")" ] \
     || [ ! -f "$tools/kind" ]; then
    echo "installing $* into $tools" >&2
    install_python_tools "$tools" "$@"
  fi
  if [ "$(cat "$tools/kind")" = venv ]; then
    tools_bin="$tools/venv/bin"
    python="$tools_bin/python"
  else
    tools_bin="$tools/site/bin"
    python=python3
    case ":${PYTHONPATH:-}:" in
      *":$tools/site:"*) ;;
      *) export PYTHONPATH="$tools/site${PYTHONPATH:+:$PYTHONPATH}" ;;
    esac
  fi
}
