# Sourced by with-postgres.sh, fuzz.sh and lib/services.sh. A free TCP port: one nothing answers
# on, below the kernel's ephemeral range (32768 and up), so an outgoing connection of the run
# cannot take it before its server binds (TestSupport and verify_pacts.py pick the same way).
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 10000 + RANDOM % 22000 ))
    if port_is_free "$port"; then echo "$port"; return 0; fi
  done
  echo "error: no free port found" >&2
  return 1
}
