# Sourced by with-postgres.sh, fuzz.sh and lib/services.sh. A free TCP port: one nothing answers on.
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 30000 ))
    if port_is_free "$port"; then echo "$port"; return 0; fi
  done
  echo "error: no free port found" >&2
  return 1
}
