#!/usr/bin/env bash
# Starts the local AWS emulator (moto server) on a free loopback port, in the background.
# Prints `URL PID`. The tests reach it through TRAILHOUND_AWS_ENDPOINT (scripts/test.sh sets it
# and AWS_ENDPOINT_URL-style settings per client); nothing in src/ knows it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/pyenv.sh)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="${TMPDIR:-/tmp}/trailhound-moto-$port.log"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if "$venv/bin/python" - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
  sleep 0.2
done
if ! kill -0 "$pid" 2>/dev/null; then
  echo "emulator.sh: moto_server did not start; its log:" >&2
  cat "$log" >&2
  exit 2
fi
echo "http://127.0.0.1:$port $pid"
