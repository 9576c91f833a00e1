//! Parquet sources as Spark, DuckDB and pandas lay them out: part directories, hive partitions,
//! bookkeeping files, parts whose schemas differ, every time type, and the errors for what cannot
//! be read. Files are written here with arrow-rs, which records the Arrow schema, so dictionary,
//! large-string and timestamp types come back exactly as written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Date64Array, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    Int8Array, LargeStringArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    UInt16Array,
};
use arrow::datatypes::{Field, Int8Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use twotower_data::{import, ColumnMap, Dataset, ImportFormat, ImportOptions, NoProgress, TimeUnit};

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    write_parquet_groups(path, cols, None)
}

/// Writes one batch, in row groups of `group` rows when given.
fn write_parquet_groups(path: &Path, cols: Vec<(&str, ArrayRef)>, group: Option<usize>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    let props = group.map(|g| {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(g))
            .build()
    });
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn opts(user: &str, item: &str, weight: Option<&str>, time: Option<&str>) -> ImportOptions {
    let mut o = ImportOptions::new(ImportFormat::Parquet);
    o.columns = ColumnMap {
        user: user.into(),
        item: item.into(),
        weight: weight.map(Into::into),
        time: time.map(Into::into),
    };
    o.dedup = twotower_data::Dedup::KeepAll;
    o
}

/// (user, item, weight, ts) of every row, sorted.
fn rows(ds: &Dataset) -> Vec<(String, String, f32, i64)> {
    let x = &ds.interactions;
    let mut v: Vec<_> = (0..x.len())
        .map(|r| {
            (
                ds.users.id(x.user[r]).to_string(),
                ds.items.id(x.item[r]).to_string(),
                x.weight[r],
                x.ts[r],
            )
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn strs(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn import_err(src: &Path, o: &ImportOptions) -> String {
    let out = src.parent().unwrap().join("never");
    let e = import(src, &out, o, &NoProgress).unwrap_err().to_string();
    assert!(!out.exists(), "a failed import left {}", out.display());
    e
}

const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z

#[test]
fn hive_partitioned_tree_with_bookkeeping_files_and_partition_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log");
    write_parquet(
        &src.join("dt=2021-01-01/country=fr/part-00000-abc.c000.snappy.parquet"),
        vec![("user", strs(&["u1", "u2"])), ("item", strs(&["a", "b"]))],
    );
    write_parquet(
        &src.join("dt=2021-01-02/country=de/part-00000-abc.c000.snappy.parquet"),
        vec![("user", strs(&["u1"])), ("item", strs(&["c"]))],
    );
    // Spark's and Hadoop's bookkeeping: none of it is Parquet, every file would fail to open.
    for junk in [
        "_SUCCESS",
        "_committed_4242",
        "_started_4242",
        "dt=2021-01-01/country=fr/.part-00000-abc.c000.snappy.parquet.crc",
        "dt=2021-01-01/_temporary/0/part-00009.parquet",
        "dt=2021-01-02/.hidden.parquet",
    ] {
        let p = src.join(junk);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"not parquet").unwrap();
    }
    let out = tmp.path().join("ds");
    // The partition key dt is the time column.
    let r = import(&src, &out, &opts("user", "item", None, Some("dt")), &NoProgress).unwrap();
    assert_eq!(r.rows_read, 3);
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(
        rows(&ds),
        vec![
            ("u1".into(), "a".into(), 1.0, T0),
            ("u1".into(), "c".into(), 1.0, T0 + 86_400),
            ("u2".into(), "b".into(), 1.0, T0),
        ]
    );
    assert_eq!(
        ds.manifest.extra["time_source"][0],
        "partition key dt (date-times, or epoch s)"
    );
    // A partition key as the item id.
    let out2 = tmp.path().join("ds2");
    import(&src, &out2, &opts("user", "country", None, None), &NoProgress).unwrap();
    let ds = Dataset::load(&out2).unwrap();
    let items: Vec<String> = rows(&ds).into_iter().map(|r| r.1).collect();
    assert_eq!(items, vec!["de", "fr", "fr"]);
}

#[test]
fn compatible_part_schemas_are_read_together() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log");
    // Old part: int32 users, plain strings, no weight column.
    write_parquet(
        &src.join("part-0.parquet"),
        vec![
            ("user", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            ("item", strs(&["a", "b"])),
            ("ts", Arc::new(Int32Array::from(vec![10, 20]))),
        ],
    );
    // Newer part: int64 users, large strings, a weight.
    write_parquet(
        &src.join("part-1.parquet"),
        vec![
            (
                "user",
                Arc::new(Int64Array::from(vec![3_000_000_000i64])) as ArrayRef,
            ),
            ("item", Arc::new(LargeStringArray::from(vec!["c"]))),
            ("w", Arc::new(Float64Array::from(vec![2.5]))),
            ("ts", Arc::new(Int64Array::from(vec![30]))),
        ],
    );
    // Dictionary-encoded strings (int8 keys), unsigned users, float32 weights.
    let dict: DictionaryArray<Int8Type> = vec!["a", "a", "d"].into_iter().collect();
    write_parquet(
        &src.join("part-2.parquet"),
        vec![
            ("user", Arc::new(UInt16Array::from(vec![1, 4, 4])) as ArrayRef),
            ("item", Arc::new(dict)),
            ("w", Arc::new(Float32Array::from(vec![1.0, 4.0, 5.0]))),
            ("ts", Arc::new(Int8Array::from(vec![40, 50, 60]))),
        ],
    );
    let out = tmp.path().join("ds");
    import(
        &src,
        &out,
        &opts("user", "item", Some("w"), Some("ts")),
        &NoProgress,
    )
    .unwrap();
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(
        rows(&ds),
        vec![
            ("1".into(), "a".into(), 1.0, 10),
            ("1".into(), "a".into(), 1.0, 40),
            ("2".into(), "b".into(), 1.0, 20),
            ("3000000000".into(), "c".into(), 2.5, 30),
            ("4".into(), "a".into(), 4.0, 50),
            ("4".into(), "d".into(), 5.0, 60),
        ]
    );
    let sources = ds.manifest.extra["time_source"].to_string();
    assert!(
        sources.contains("int32 epoch s") && sources.contains("int8 epoch s"),
        "{sources}"
    );
}

#[test]
fn incompatible_parts_name_both_files_and_the_column() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log");
    write_parquet(
        &src.join("part-0.parquet"),
        vec![("user", strs(&["u1"])), ("item", strs(&["a"]))],
    );
    write_parquet(
        &src.join("part-1.parquet"),
        vec![
            ("user", strs(&["u2"])),
            ("item", Arc::new(Int64Array::from(vec![7])) as ArrayRef),
        ],
    );
    let e = import_err(&src, &opts("user", "item", None, None));
    assert!(
        e.contains("part-1.parquet") && e.contains("part-0.parquet"),
        "{e}"
    );
    assert!(
        e.contains("column \"item\" has type Int64 here but Utf8 in"),
        "{e}"
    );
    assert!(e.contains("incompatible"), "{e}");

    // A timestamp in one part and strings in another.
    let src = tmp.path().join("log2");
    write_parquet(
        &src.join("a.parquet"),
        vec![
            ("user", strs(&["u1"])),
            ("item", strs(&["a"])),
            ("t", Arc::new(TimestampSecondArray::from(vec![T0])) as ArrayRef),
        ],
    );
    write_parquet(
        &src.join("b.parquet"),
        vec![
            ("user", strs(&["u1"])),
            ("item", strs(&["a"])),
            ("t", strs(&["2021-01-01"])),
        ],
    );
    let e = import_err(&src, &opts("user", "item", None, Some("t")));
    assert!(
        e.contains("b.parquet") && e.contains("a.parquet") && e.contains("\"t\""),
        "{e}"
    );
}

#[test]
fn every_time_type_becomes_epoch_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let t = T0 + 3_723; // 01:02:03
    let cases: Vec<(&str, ArrayRef)> = vec![
        ("ts_s", Arc::new(TimestampSecondArray::from(vec![t]))),
        (
            "ts_ms",
            Arc::new(TimestampMillisecondArray::from(vec![t * 1_000 + 999])),
        ),
        (
            "ts_us_utc",
            Arc::new(TimestampMicrosecondArray::from(vec![t * 1_000_000 + 5]).with_timezone("UTC")),
        ),
        (
            "ts_ns_paris",
            Arc::new(TimestampNanosecondArray::from(vec![t * 1_000_000_000]).with_timezone("Europe/Paris")),
        ),
        ("epoch", Arc::new(Int64Array::from(vec![t]))),
        ("float_epoch", Arc::new(Float64Array::from(vec![t as f64 + 0.75]))),
        ("rfc3339", strs(&["2021-01-01T02:02:03+01:00"])),
        ("sql_text", strs(&["2021-01-01 01:02:03.123456"])),
    ];
    for (name, col) in cases {
        let src = tmp.path().join(format!("{name}.parquet"));
        write_parquet(
            &src,
            vec![("user", strs(&["u"])), ("item", strs(&["i"])), (name, col)],
        );
        let out = tmp.path().join(format!("ds-{name}"));
        import(&src, &out, &opts("user", "item", None, Some(name)), &NoProgress).unwrap();
        let ds = Dataset::load(&out).unwrap();
        assert_eq!(ds.interactions.ts, vec![t], "{name}");
        let unit = ds.manifest.extra["time_source"][0].as_str().unwrap().to_string();
        match name {
            "ts_ms" => assert_eq!(unit, "timestamp[ms]"),
            "ts_us_utc" => assert_eq!(unit, "timestamp[us, UTC]"),
            "ts_ns_paris" => assert_eq!(unit, "timestamp[ns, Europe/Paris]"),
            "epoch" => assert_eq!(unit, "int64 epoch s"),
            _ => {}
        }
    }
    // Dates: midnight UTC; before 1970 too.
    let src = tmp.path().join("dates.parquet");
    write_parquet(
        &src,
        vec![
            ("user", strs(&["u", "v"])),
            ("item", strs(&["i", "i"])),
            ("d32", Arc::new(Date32Array::from(vec![18_628, -1])) as ArrayRef),
            ("d64", Arc::new(Date64Array::from(vec![T0 * 1_000, -1]))),
        ],
    );
    for c in ["d32", "d64"] {
        let out = tmp.path().join(format!("ds-{c}"));
        import(&src, &out, &opts("user", "item", None, Some(c)), &NoProgress).unwrap();
        let ds = Dataset::load(&out).unwrap();
        let want = if c == "d32" { -86_400 } else { -1 };
        assert_eq!(ds.interactions.ts, vec![T0, want], "{c}");
    }
}

#[test]
fn integer_milliseconds_are_refused_as_seconds_and_read_with_a_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.parquet");
    write_parquet(
        &src,
        vec![
            ("user", strs(&["u1", "u1"])),
            ("item", strs(&["a", "b"])),
            (
                "ts",
                Arc::new(Int64Array::from(vec![T0 * 1_000, T0 * 1_000 + 1_500])) as ArrayRef,
            ),
        ],
    );
    let o = opts("user", "item", None, Some("ts"));
    let e = import_err(&src, &o);
    assert!(e.contains("log.parquet: row 1: column \"ts\""), "{e}");
    assert!(e.contains("1609459200000") && e.contains("--time-unit ms"), "{e}");
    let mut o = o;
    o.time_unit = TimeUnit::Ms;
    let out = tmp.path().join("ds");
    import(&src, &out, &o, &NoProgress).unwrap();
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.interactions.ts, vec![T0, T0 + 1]);
    assert_eq!(ds.manifest.extra["time_source"][0], "int64 epoch ms");
    assert_eq!(ds.manifest.extra["import"]["time_unit"], "ms");

    // The same rule for CSV.
    let csv = tmp.path().join("log.csv");
    std::fs::write(&csv, "user,item,ts\nu1,i1,1609459200000\n").unwrap();
    let mut o = opts("user", "item", None, Some("ts"));
    o.format = ImportFormat::Csv;
    let e = import_err(&csv, &o);
    assert!(
        e.contains("log.csv:2:") && e.contains("ts \"1609459200000\""),
        "{e}"
    );
    assert!(e.contains("--time-unit ms"), "{e}");
    o.time_unit = TimeUnit::Ms;
    let out = tmp.path().join("ds-csv");
    import(&csv, &out, &o, &NoProgress).unwrap();
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.interactions.ts, vec![T0]);
    // Stats print such a dataset (and any other) without panicking.
    let s = twotower_data::Stats::of(&ds, 3).to_string();
    assert!(s.contains("2021-01-01T00:00:00Z"), "{s}");
}

#[test]
fn bad_values_name_file_row_column_and_the_real_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let case = |name: &str, cols: Vec<(&str, ArrayRef)>, o: ImportOptions| -> String {
        let src = tmp.path().join(format!("{name}.parquet"));
        write_parquet(&src, cols);
        import_err(&src, &o)
    };
    let w = opts("user", "item", Some("w"), None);
    let e = case(
        "nan",
        vec![
            ("user", strs(&["u", "u", "v"])),
            ("item", strs(&["a", "b", "c"])),
            ("w", Arc::new(Float64Array::from(vec![1.0, 2.0, f64::NAN]))),
        ],
        w.clone(),
    );
    assert!(
        e.contains("nan.parquet: row 3: column \"w\": NaN is not a finite number"),
        "{e}"
    );
    let e = case(
        "inf",
        vec![
            ("user", strs(&["u"])),
            ("item", strs(&["a"])),
            ("w", Arc::new(Float32Array::from(vec![f32::INFINITY]))),
        ],
        w,
    );
    assert!(
        e.contains("inf.parquet: row 1: column \"w\": inf is not a finite number"),
        "{e}"
    );
    // A bad date-time among valid ones: the cause, not "is null".
    let e = case(
        "badtime",
        vec![
            ("user", strs(&["u", "u"])),
            ("item", strs(&["a", "b"])),
            ("t", strs(&["2021-01-01T00:00:00Z", "2021-02-30T00:00:00Z"])),
        ],
        opts("user", "item", None, Some("t")),
    );
    assert!(e.contains("badtime.parquet: row 2: column \"t\""), "{e}");
    assert!(
        e.contains("\"2021-02-30T00:00:00Z\" is neither epoch seconds nor a date-time"),
        "{e}"
    );
    // Null and empty ids.
    let e = case(
        "nullid",
        vec![
            (
                "user",
                Arc::new(StringArray::from(vec![Some("u"), None])) as ArrayRef,
            ),
            ("item", strs(&["a", "b"])),
        ],
        opts("user", "item", None, None),
    );
    assert!(
        e.contains("nullid.parquet: row 2: column \"user\": the id is null"),
        "{e}"
    );
    let e = case(
        "emptyid",
        vec![("user", strs(&["u"])), ("item", strs(&[""]))],
        opts("user", "item", None, None),
    );
    assert!(
        e.contains("emptyid.parquet: row 1: column \"item\": the id is empty"),
        "{e}"
    );
    // A list id column: an error naming the column, not ids like "[a]".
    let mut lb = ListBuilder::new(StringBuilder::new());
    lb.values().append_value("a");
    lb.append(true);
    let e = case(
        "listid",
        vec![
            ("user", strs(&["u"])),
            ("item", Arc::new(lb.finish()) as ArrayRef),
        ],
        opts("user", "item", None, None),
    );
    assert!(
        e.contains("listid.parquet: column \"item\" has type List("),
        "{e}"
    );
    assert!(e.contains("an id column must hold integers or strings"), "{e}");
    // Float ids are refused too (1.0 and 1 would be different ids).
    let e = case(
        "floatid",
        vec![
            ("user", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
            ("item", strs(&["a"])),
        ],
        opts("user", "item", None, None),
    );
    assert!(e.contains("column \"user\" has type Float64"), "{e}");
    // A string weight.
    let e = case(
        "strweight",
        vec![
            ("user", strs(&["u"])),
            ("item", strs(&["a"])),
            ("w", strs(&["5"])),
        ],
        opts("user", "item", Some("w"), None),
    );
    assert!(
        e.contains("column \"w\" has type Utf8: a weight column must be numeric"),
        "{e}"
    );
    // A time column missing from one part (weight may be missing; time may not).
    let src = tmp.path().join("parts");
    write_parquet(
        &src.join("p0.parquet"),
        vec![
            ("user", strs(&["u"])),
            ("item", strs(&["a"])),
            ("t", strs(&["2021-01-01"])),
        ],
    );
    write_parquet(
        &src.join("p1.parquet"),
        vec![("user", strs(&["u"])), ("item", strs(&["b"]))],
    );
    let e = import_err(&src, &opts("user", "item", None, Some("t")));
    assert!(e.contains("p1.parquet: no column named \"t\""), "{e}");
    // A column named nowhere.
    let e = import_err(&src, &opts("user", "sku", None, None));
    assert!(
        e.contains("p0.parquet: no column named \"sku\" (columns present: user, item, t)"),
        "{e}"
    );
}

#[test]
fn many_row_groups_and_parts_stream_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log");
    let n = 20_000;
    let mut want = Vec::new();
    for part in 0..3 {
        let users: Vec<String> = (0..n).map(|r| format!("u{}", (r * 7 + part) % 501)).collect();
        let items: Vec<String> = (0..n).map(|r| format!("i{}", (r * 13 + part) % 97)).collect();
        let ts: Vec<i64> = (0..n).map(|r| T0 + (part * n + r) as i64).collect();
        for r in 0..n {
            want.push((users[r].clone(), items[r].clone(), 1.0f32, ts[r]));
        }
        write_parquet_groups(
            &src.join(format!("dt=2021-01-0{}/part-{part}.parquet", part + 1)),
            vec![
                ("user", Arc::new(StringArray::from(users)) as ArrayRef),
                ("item", Arc::new(StringArray::from(items))),
                ("ts", Arc::new(Int64Array::from(ts))),
            ],
            Some(1_000),
        );
    }
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let out = tmp.path().join("ds");
    let r = import(&src, &out, &opts("user", "item", None, Some("ts")), &NoProgress).unwrap();
    assert_eq!(r.interactions, 3 * n as u64);
    assert_eq!(rows(&Dataset::load(&out).unwrap()), want);
}

fn write_items_part(path: &Path, ids: &[&str], genre: &str) {
    let mut lb = ListBuilder::new(StringBuilder::new());
    for _ in ids {
        lb.values().append_value(genre);
        lb.append(true);
    }
    write_parquet(
        path,
        vec![
            ("item", strs(ids)),
            ("title", strs(&ids.iter().map(|_| "T (2001)").collect::<Vec<_>>())),
            ("genres", Arc::new(lb.finish()) as ArrayRef),
        ],
    );
}

#[test]
fn side_files_as_part_directories_and_missing_ids_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.parquet");
    write_parquet(
        &log,
        vec![
            ("user", strs(&["u1", "u2", "u3", "u4"])),
            ("item", strs(&["a", "b", "c", "zz"])),
        ],
    );
    let items: PathBuf = tmp.path().join("items");
    write_items_part(&items.join("kind=film/part-0.parquet"), &["a", "b"], "Drama");
    write_items_part(&items.join("kind=show/part-0.parquet"), &["c", "cold"], "Comedy");
    std::fs::write(items.join("_SUCCESS"), b"").unwrap();
    let users = tmp.path().join("users");
    write_parquet(
        &users.join("part-0.parquet"),
        vec![("user", strs(&["u1"])), ("gender", strs(&["F"]))],
    );
    let mut o = opts("user", "item", None, None);
    o.items = Some(items);
    o.users = Some(users);
    let out = tmp.path().join("ds");
    let r = import(&log, &out, &o, &NoProgress).unwrap();
    assert_eq!(r.item_rows, 5); // a, b, c, cold from the side parts, zz bare
    assert_eq!(r.items_without_features, 1);
    assert_eq!(r.users_without_features, 3);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("1 of 4 interacting items have no row in the item features (e.g. \"zz\")"),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings[1].starts_with(
            "3 of 4 interacting users have no row in the user features (e.g. \"u2\", \"u3\", \"u4\")"
        ),
        "{:?}",
        r.warnings
    );
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.items.ids(), &["a", "b", "c", "cold", "zz"]);
    let kind = ds
        .item_table
        .categorical
        .iter()
        .find(|c| c.name == "kind")
        .unwrap();
    let k = |i: u32| kind.vocab.id(kind.values[i as usize]).to_string();
    assert_eq!((k(0), k(2)), ("film".to_string(), "show".to_string()));
    assert_eq!(ds.item_table.titles[3].as_deref(), Some("T (2001)"));
}

#[test]
fn export_writes_plain_parquet_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.parquet");
    write_parquet(
        &src,
        vec![
            ("user", Arc::new(Int64Array::from(vec![1, 2, 2])) as ArrayRef),
            ("item", strs(&["a", "b", "a"])),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![T0 * 1000, 0, -1])),
            ),
        ],
    );
    let ds_dir = tmp.path().join("ds");
    import(
        &src,
        &ds_dir,
        &opts("user", "item", None, Some("ts")),
        &NoProgress,
    )
    .unwrap();
    let out = tmp.path().join("export");
    let r = twotower_data::export(&ds_dir, &out, &NoProgress).unwrap();
    assert_eq!(r.interactions, 3);
    assert_eq!(
        r.files,
        vec!["interactions.parquet", "items.parquet", "users.parquet"]
    );
    // The export reads back as an ordinary Parquet log, with the same rows.
    let again = tmp.path().join("ds2");
    import(
        &out.join("interactions.parquet"),
        &again,
        &opts("user", "item", Some("weight"), Some("ts")),
        &NoProgress,
    )
    .unwrap();
    let a = Dataset::load(&ds_dir).unwrap();
    let b = Dataset::load(&again).unwrap();
    assert_eq!(rows(&a), rows(&b));
    assert_eq!(rows(&a)[0], ("1".into(), "a".into(), 1.0, T0));
    // A second export replaces the first; nothing else is left beside it.
    twotower_data::export(&ds_dir, &out, &NoProgress).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ds", "ds2", "export", "log.parquet"]);
    // It never replaces a directory that is not an export.
    let e = twotower_data::export(&ds_dir, tmp.path(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("not a twotower export"), "{e}");
}
