#!/usr/bin/env bash
# Quickstart: set up, start two throwaway MariaDB servers (SOURCE and TARGET) on free loopback
# ports, seed a small shop database, keep writing to it, and run the whole flow: a consistent
# dump taken while the writes go on, a bulk import of it into TARGET, binlog streaming from the
# dump's exact position while writes continue, and an online checksum at a sync point of the
# running stream that proves TARGET equals SOURCE. Everything is removed at the end.
# `sluice quickstart` (issue #8) will replace this script.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh >/dev/null
echo "== quickstart: set-up done"

work=$(mktemp -d -t sluice-quickstart-XXXXXX)
writer_pid=""
stream_pid=""
cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "$stream_pid" ] && kill "$stream_pid" 2>/dev/null || true
  # Closing the sandbox's stdin stops both servers (its watchdog removes their folders).
  [ -n "${SANDBOX_IN:-}" ] && exec {SANDBOX_IN}>&- || true
  rm -rf "$work"
}
trap cleanup EXIT

coproc SANDBOX { exec target/debug/sluice-sandbox; }
SANDBOX_IN=${SANDBOX[1]}
read -r line <&"${SANDBOX[0]}"
eval "$line"   # SOURCE=mysql://root@127.0.0.1:PORT TARGET=… SOURCE_DATADIR=…
echo "== quickstart: SOURCE $SOURCE, TARGET $TARGET (throwaway MariaDB servers)"

source_port=${SOURCE##*:}
sql() { mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$source_port" -u root "$@"; }

sql <<'SQL'
CREATE DATABASE shop;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128), created DATETIME(6) NOT NULL);
CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
                     status ENUM('new','paid','shipped') NOT NULL, note TEXT, KEY (customer_id));
INSERT INTO customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), NOW(6) FROM seq_1_to_20000;
INSERT INTO orders (customer_id, amount, status, note)
  SELECT seq % 20000 + 1, (seq % 100000) / 100, ELT(seq % 3 + 1, 'new', 'paid', 'shipped'), IF(seq % 7 = 0, NULL, 'it''s fine')
  FROM seq_1_to_200000;
SQL
echo "== quickstart: seeded shop.customers (20,000 rows) and shop.orders (200,000 rows)"

# Live writes while the dump runs: new orders and status changes, one transaction each.
(
  while true; do
    sql shop -e "BEGIN; INSERT INTO orders (customer_id, amount, status) VALUES (FLOOR(1 + RAND() * 20000), 9.99, 'new');
                 UPDATE orders SET status = 'paid' WHERE id = FLOOR(1 + RAND() * 200000); COMMIT;" 2>/dev/null || exit 0
  done
) &
writer_pid=$!
sleep 1

echo "== quickstart: sluice dump (consistent, 2 threads, zstd CSV) while writes go on"
target/debug/sluice dump --source "$SOURCE" --output "$work/dump" --filter 'shop.*' --threads 2 \
  --chunk-rows 50000 --format csv --compress zstd --json > "$work/summary.json"
kill "$writer_pid" 2>/dev/null || true
writer_pid=""

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
s = json.load(open(f"{work}/summary.json"))
m = json.load(open(f"{work}/dump/metadata.json"))
print(f"   dumped {s['rows']:,} rows of {s['tables']} tables in {s['chunks']} chunk files ({s['bytes']:,} bytes) in {s['seconds']:.2f} s")
print(f"   snapshot: {s['consistency']} at {s['binlog_file']}:{s['binlog_offset']}, GTID {s['gtid_set']}")
for t in m["tables"]:
    print(f"   {t['database']}.{t['table']}: {t['rows']:,} rows in {len(t['chunks'])} chunks")
PY
echo "== quickstart: the dump folder had: $(ls "$work/dump" | wc -l) files, metadata.json last"

echo "== quickstart: sluice import into TARGET (parallel parse, sort by key, LOAD DATA in key order)"
target/debug/sluice import --input "$work/dump" --target "$TARGET" --threads 2 --json > "$work/import.json"
python3 - "$work" <<'PY'
import json, sys
s = json.load(open(f"{sys.argv[1]}/import.json"))
print(f"   imported {s['rows']:,} rows of {s['tables']} tables in {s['seconds']:.2f} s (row counts and fingerprints verified)")
PY

# SOURCE has moved on since the snapshot. sluice stream carries it from the dump's exact
# position, with the writes still going on; the checksum then runs online, at a sync point of
# the running stream, and proves that dump + import + stream lost and doubled nothing.
echo "== quickstart: sluice stream from the dump's position into TARGET (writes resume on SOURCE)"
(
  while true; do
    sql shop -e "BEGIN; INSERT INTO orders (customer_id, amount, status) VALUES (FLOOR(1 + RAND() * 20000), 9.99, 'new');
                 UPDATE orders SET status = 'shipped' WHERE id = FLOOR(1 + RAND() * 200000); COMMIT;" 2>/dev/null || exit 0
  done
) &
writer_pid=$!
control_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
control="http://127.0.0.1:$control_port"
target/debug/sluice stream --source "$SOURCE" --target "$TARGET" --from-dump "$work/dump" --filter 'shop.*' \
  --workers 2 --control "127.0.0.1:$control_port" 2> "$work/stream.log" &
stream_pid=$!
for _ in $(seq 1 100); do
  target/debug/sluice status --control "$control" > "$work/status.json" 2>/dev/null && break
  sleep 0.1
done
sleep 3
target/debug/sluice status --control "$control" > "$work/status.json"
python3 - "$work" <<'PY'
import json, sys
s = json.load(open(f"{sys.argv[1]}/status.json"))
print(f"   streaming: {s['transactions']:,} transactions ({s['rows']:,} rows) applied, at {s['position']} (GTID {s['gtid']}), lag {s['lag_seconds']} s")
PY

echo "== quickstart: sluice checksum SOURCE vs TARGET, online at sync points of the running stream, writes still going"
if target/debug/sluice checksum --source "$SOURCE" --target "$TARGET" --filter 'shop.*' --threads 2 --sync-with "$control"; then
  verdict=equal
else
  verdict=different
fi
kill "$writer_pid" 2>/dev/null || true
writer_pid=""
target/debug/sluice stop --control "$control" > /dev/null
wait "$stream_pid"
stream_pid=""
grep -v '^$' "$work/stream.log" | tail -1 | sed 's/^/   /'
if [ "$verdict" = equal ]; then
  echo "== quickstart: TARGET equals SOURCE at every sync point; the stream stopped at a transaction boundary."
else
  echo "== quickstart: differences found (see above)"; exit 1
fi
