#!/usr/bin/env bash
# Scale tests (docs/performance.md, "Scale"): builds the release binaries, then runs
# benches/scale/scale.py. Usage: benches/scale/run.sh queue|connections|sites|all [options]
# (see `benches/scale/scale.py --help`). Everything runs on loopback and stops by itself;
# reports go to benches/scale/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p mta-core --bin mta -p benches --bin mta-load --bin mta-sink --bin mta-dns
exec python3 benches/scale/scale.py "$@" --bin "${CARGO_TARGET_DIR:-target}/release"
