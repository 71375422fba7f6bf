#!/usr/bin/env bash
# Starts our MTA for ../shared/bench/relay-generic.sh: a config in $RUN_DIR that relays
# everything from 127.0.0.1:$PORT_IN to the sink on 127.0.0.1:$PORT_OUT (durable spool,
# fsync before 250, like Postfix). MTA_EXTRA_CONFIG adds TOML lines.
cat > "$RUN_DIR/mta.toml" <<CFG
hostname = "relay.bench.invalid"
[spool]
path = "$RUN_DIR/spool"
[delivery_log]
path = "$RUN_DIR/log/delivery.jsonl"
[[listener]]
address = "127.0.0.1:$PORT_IN"
relay_networks = ["127.0.0.0/8"]
max_connections_per_ip = 1000
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:$PORT_OUT"
${MTA_EXTRA_CONFIG:-}
CFG
exec "$MTA_BIN" run --config "$RUN_DIR/mta.toml"
