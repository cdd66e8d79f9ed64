# Sourced by the scripts that need a collector on this machine (smoke-cross.sh,
# trace-hot-functions.sh). start_local_collector DIR PORT: serves 127.0.0.1:PORT over
# mutual TLS with the PKI in DIR/pki (scripts/make-certs.sh), its database and log in DIR;
# sets collector_pid and returns once it listens.
start_local_collector() {
    local dir=$1 port=$2
    cat >"$dir/collector.toml" <<TOML
listen = "127.0.0.1:$port"
database = "$dir/collector.db"
[tls]
cert_file = "$dir/pki/server.pem"
key_file = "$dir/pki/server.key"
client_ca_file = "$dir/pki/ca.pem"
TOML
    target/debug/assent-collector serve --config "$dir/collector.toml" 2>"$dir/collector.log" &
    collector_pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$dir/collector.log" && return 0; sleep 0.1; done
    echo "the collector did not start listening on port $port:"
    cat "$dir/collector.log"
    return 1
}
