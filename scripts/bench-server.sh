# Sourced by the bench scripts: builds the release binary and starts a server on a fresh
# SQLite directory (or on $DATABASE_URL when set), stopping it on exit.
BIN=target/release/switchboard
PORT=${PORT:-18181}
BASE=http://127.0.0.1:$PORT
KEY=sb_bench_$(od -An -tx1 -N16 /dev/urandom | tr -d " \n")  # 41 characters (32 at least)
cargo build --release -q -p switchboard-server
WORK=$(mktemp -d)
SWITCHBOARD_BOOTSTRAP_API_KEY=$KEY SWITCHBOARD_LOG=warn "$BIN" serve --data-dir "$WORK" --listen 127.0.0.1:$PORT \
  --log-format text >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
curl -sf "$BASE/ready" >/dev/null || { cat "$WORK/server.log"; exit 1; }
