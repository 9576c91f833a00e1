"""Prepares an interaction log in Spark for `twotower data import`, as docs/DATA_IMPORT.md describes:
dedup to the latest (user, item), iterative minimum counts (a k-core, like twotower's own filter),
then Parquet partitioned by date, with Spark's usual _SUCCESS and .crc files.

usage: python spark_job.py --out DIR [--input LOG.csv] [--rows N] [--min-user 5] [--min-item 5]

--input is a CSV with a header: user,item,weight,ts (ts in epoch seconds). Without it, N synthetic
rows are generated in Spark. Prints one JSON line: what Spark wrote (rows, users, items, time range),
for the caller to check against `twotower data stats`.
"""
import argparse
import json

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--input")
ap.add_argument("--rows", type=int, default=1_000_000)
ap.add_argument("--min-user", type=int, default=5)
ap.add_argument("--min-item", type=int, default=5)
a = ap.parse_args()

spark = (
    SparkSession.builder.master("local[2]")
    .appName("twotower-prepare")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.shuffle.partitions", "8")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("WARN")

if a.input:
    log = spark.read.option("header", True).option("inferSchema", True).csv(a.input)
    log = log.withColumn("ts", F.col("ts").cast("long").cast("timestamp"))
else:
    users, items = max(a.rows // 50, 100), max(a.rows // 500, 100)
    log = spark.range(a.rows).select(
        F.concat(F.lit("u"), (F.abs(F.hash("id")) % users).cast("string")).alias("user"),
        # Integer item ids, skewed popularity: twotower writes them as decimal strings.
        F.floor(F.pow(F.rand(7), 2) * items).cast("long").alias("item"),
        (F.col("id") % 5 + 1).cast("float").alias("weight"),
        (F.lit(1704067200) + (F.col("id") * 2592000 / a.rows).cast("long")).cast("timestamp").alias("ts"),
    )

# The latest interaction of each (user, item) pair.
latest = Window.partitionBy("user", "item").orderBy(F.col("ts").desc())
df = log.withColumn("rn", F.row_number().over(latest)).filter("rn = 1").drop("rn")

# Minimum counts, repeated until nothing more changes.
df = df.cache()
n = df.count()
while True:
    keep_u = df.groupBy("user").count().filter(F.col("count") >= a.min_user).select("user")
    keep_i = df.groupBy("item").count().filter(F.col("count") >= a.min_item).select("item")
    nxt = df.join(keep_u, "user").join(keep_i, "item").cache()
    m = nxt.count()
    df.unpersist()
    df = nxt
    if m == n:
        break
    n = m

df = df.withColumn("dt", F.to_date("ts"))
df.repartition("dt").write.mode("overwrite").partitionBy("dt").parquet(a.out)

r = df.agg(
    F.count("*").alias("rows"),
    F.countDistinct("user").alias("users"),
    F.countDistinct("item").alias("items"),
    F.min(F.unix_timestamp("ts")).alias("min_ts"),
    F.max(F.unix_timestamp("ts")).alias("max_ts"),
    F.countDistinct("dt").alias("days"),
).collect()[0]
print(json.dumps(r.asDict()))
spark.stop()
