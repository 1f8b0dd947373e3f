#!/usr/bin/env bash
# Starts crmd on its embedded default: installs what is missing, builds crmd and crm in release mode,
# and runs crmd in the foreground (Ctrl-C stops it and its PostgreSQL cluster).
#
#   scripts/run.sh                      # embedded PostgreSQL in ./crm-data, gRPC on 127.0.0.1:50051
#   scripts/run.sh --port 6000          # any crmd option (crmd --help lists them)
#   CRM_DATABASE_URL=postgresql://… scripts/run.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need=()
for package in libpq-dev postgresql postgresql-contrib; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "run: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "run: building crmd and crm (release; the first build takes a few minutes)" >&2
swift build -c release --product crmd >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)
echo "run: the client is $bin/crm (export PATH=\"$bin:\$PATH\")" >&2
exec "$bin/crmd" "$@"
