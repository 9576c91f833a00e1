"""Writes the same synthetic interaction log twice with DuckDB, for `data import` benchmarks:

  OUT/parquet/dt=YYYY-MM-DD/data_*.parquet   hive-partitioned by day; ts TIMESTAMP_MS, user/item strings
  OUT/log.csv                               user,item,weight,ts (epoch seconds)

usage: python gen_logs.py ROWS OUT   (needs `pip install duckdb`)

Users are ROWS/50, items ROWS/500 (at least 100 each), popularity skewed; times span 30 days.
"""
import os
import sys

import duckdb

rows = int(sys.argv[1])
out = sys.argv[2]
users = max(rows // 50, 100)
items = max(rows // 500, 100)
os.makedirs(out, exist_ok=True)
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
con.execute(f"""
CREATE TABLE log AS SELECT
  'u' || ((hash(i) % {users}))::VARCHAR AS "user",
  'i' || (floor({items} * pow(random(), 2))::BIGINT)::VARCHAR AS item,
  (1 + (i % 5))::FLOAT AS weight,
  make_timestamp(1704067200000000 + i * {2592000000000 // rows}) AS ts_us
FROM range({rows}) t(i)
""")
con.execute(f"""
COPY (SELECT "user", item, weight, ts_us::TIMESTAMP_MS AS ts, strftime(ts_us, '%Y-%m-%d') AS dt FROM log)
TO '{out}/parquet' (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)
""")
con.execute(f"""
COPY (SELECT "user", item, weight, epoch(ts_us)::BIGINT AS ts FROM log) TO '{out}/log.csv' (HEADER)
""")
print(con.execute("SELECT count(*), count(DISTINCT \"user\"), count(DISTINCT item) FROM log").fetchone())
