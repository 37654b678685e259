# What the benchmark scripts share (wrk-bench, drain-bench,
# scale-out-bench, gateway-expiry-bench): a free loopback port, an nginx
# receiver that answers 204 at the machine's speed, waiting for a node,
# and wrk's event script. Sourced, not run;
# the script sets `work` (a scratch folder) and `pids` (what its trap
# stops) first.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts nginx on 127.0.0.1:$1, answering 204 to everything and logging a
# line per request to $work/nginx/access.log: its webhook-id and path, so
# that a delivery sent twice shows as a repeated line. $2 goes after the
# port in `listen` (" ssl"), $3 into the server block (its certificate).
start_nginx() {
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  log_format delivery '\$http_webhook_id \$uri';
  access_log $work/nginx/access.log delivery;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$1${2:-};
    ${3:-}
    location / { return 204; }
  }
}
EOF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
  pids+=($!)
}

# Waits (10 s at most) until the node on port $1 answers.
wait_for_node() {
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$1/openapi.yaml" > /dev/null && return
    sleep 0.1
  done
}

# Writes $work/event.lua, which has wrk post one event of type
# `load.event` with the API key $1.
write_event_script() {
  cat > "$work/event.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"type":"load.event","data":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
EOF
}
