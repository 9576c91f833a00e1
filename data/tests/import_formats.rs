//! CSV/TSV/JSON/Parquet importers with column mapping, side files and cleaning options.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use twotower_data::{
    import, ColumnMap, Dataset, Dedup, ImportFormat, ImportOptions, NoProgress, TextEncoding,
};

fn csv_opts(format: ImportFormat) -> ImportOptions {
    let mut o = ImportOptions::new(format);
    o.columns = ColumnMap {
        user: "uid".into(),
        item: "movie".into(),
        weight: Some("stars".into()),
        time: Some("when".into()),
    };
    o
}

fn item_ids(ds: &Dataset, u: &str) -> Vec<String> {
    let u = ds.users.get(u).unwrap();
    let x = &ds.interactions;
    (0..x.len())
        .filter(|&r| x.user[r] == u)
        .map(|r| ds.items.id(x.item[r]).to_string())
        .collect()
}

#[test]
fn csv_with_mapped_columns_quotes_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    std::fs::write(
        &src,
        "\u{feff}uid,movie,stars,when,extra\na,\"m,1\",4.5,2001-02-03T04:05:06Z,x\na,m2,3,981173106,y\nb,m2,1,5,z\n",
    )
    .unwrap();
    let out = tmp.path().join("ds");
    let r = import(&src, &out, &csv_opts(ImportFormat::Csv), &NoProgress).unwrap();
    assert_eq!(r.interactions, 3);
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(item_ids(&ds, "a"), vec!["m,1", "m2"]);
    let x = &ds.interactions;
    assert_eq!(x.ts[0], 981_173_106);
    assert_eq!(x.weight[0], 4.5);
    // No side files: items.parquet lists the interacting items without features.
    assert_eq!(ds.items.len(), 2);
    assert!(ds.item_table.titles.iter().all(Option::is_none));
}

#[test]
fn tsv_without_time_uses_file_order_and_keeps_latest_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.tsv");
    std::fs::write(&src, "user\titem\tr\nu1\ti1\t5\nu1\ti2\t1\nu1\ti1\t2\n").unwrap();
    let mut o = ImportOptions::new(ImportFormat::Tsv);
    o.columns.weight = Some("r".into());
    let out = tmp.path().join("ds");
    import(&src, &out, &o, &NoProgress).unwrap();
    let ds = Dataset::load(&out).unwrap();
    let x = &ds.interactions;
    assert_eq!(x.len(), 2);
    // i1 kept once: the later record (position 2, weight 2).
    let r = (0..2).find(|&r| ds.items.id(x.item[r]) == "i1").unwrap();
    assert_eq!((x.weight[r], x.ts[r]), (2.0, 2));
    o.dedup = Dedup::Earliest;
    import(&src, &out, &o, &NoProgress).unwrap();
    let ds = Dataset::load(&out).unwrap();
    let x = &ds.interactions;
    let r = (0..2).find(|&r| ds.items.id(x.item[r]) == "i1").unwrap();
    assert_eq!(x.weight[r], 5.0);
    o.dedup = Dedup::KeepAll;
    assert_eq!(import(&src, &out, &o, &NoProgress).unwrap().interactions, 3);
}

#[test]
fn min_rating_and_iterative_min_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    // c only rates x; x is rated by a, b, c; y by a, b; z by a only (and low).
    std::fs::write(
        &src,
        "user,item,rating\na,x,5\na,y,4\na,z,1\nb,x,4\nb,y,5\nc,x,5\n",
    )
    .unwrap();
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.columns.weight = Some("rating".into());
    o.min_rating = Some(3.0);
    o.min_user_interactions = 2;
    o.min_item_interactions = 2;
    let out = tmp.path().join("ds");
    let r = import(&src, &out, &o, &NoProgress).unwrap();
    assert_eq!(r.cleaned.below_min_rating, 1);
    // c dropped (1 interaction); then x still has a, b -> stable.
    assert_eq!(r.interactions, 4);
    assert_eq!((r.interacting_users, r.interacting_items), (2, 2));
    let ds = Dataset::load(&out).unwrap();
    assert!(ds.users.get("c").is_none());
    assert!(ds.items.get("z").is_none());
}

#[test]
fn side_files_csv_and_parquet_from_another_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.csv");
    std::fs::write(&log, "user,item\nu1,i1\nu1,i2\nu2,i3\n").unwrap();
    let items = tmp.path().join("items.csv");
    std::fs::write(
        &items,
        "item,title,genres,lang\ni1,Café Society (2016),Comedy|Drama,en\ni2,Other,,fr\ni9,Cold One,Horror,\n",
    )
    .unwrap();
    let users = tmp.path().join("users.csv");
    std::fs::write(&users, "user,country\nu1,NZ\nu5,FR\n").unwrap();
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.items = Some(items);
    o.users = Some(users);
    let a = tmp.path().join("a");
    let r = import(&log, &a, &o, &NoProgress).unwrap();
    assert_eq!(r.items_without_features, 1); // i3
    let ds = Dataset::load(&a).unwrap();
    // Catalog: the side table in order, then the interaction-only item.
    assert_eq!(ds.items.ids(), &["i1", "i2", "i9", "i3"]);
    assert_eq!(ds.users.ids(), &["u1", "u5", "u2"]);
    assert_eq!(ds.item_table.titles[0].as_deref(), Some("Café Society (2016)"));
    assert_eq!(ds.item_table.genres.row(0).len(), 2);
    assert!(ds.item_table.genres.row(3).is_empty());
    let lang = &ds.item_table.categorical[0];
    assert_eq!(
        (lang.name.as_str(), lang.get(1), lang.get(2), lang.get(3)),
        ("lang", Some("fr"), None, None)
    );
    assert_eq!(ds.user_table.categorical[0].get(0), Some("NZ"));
    assert_eq!(ds.user_table.categorical[0].get(2), None);

    // Features travel: import another log with dataset a's parquet tables as side files.
    let log2 = tmp.path().join("log2.csv");
    std::fs::write(&log2, "who,what\nu5,i9\n").unwrap();
    let mut o2 = ImportOptions::new(ImportFormat::Csv);
    o2.columns.user = "who".into();
    o2.columns.item = "what".into();
    o2.items = Some(a.join("items.parquet"));
    o2.users = Some(a.join("users.parquet"));
    let b = tmp.path().join("b");
    import(&log2, &b, &o2, &NoProgress).unwrap();
    let ds2 = Dataset::load(&b).unwrap();
    assert_eq!(ds2.items.len(), 4);
    let i9 = ds2.items.get("i9").unwrap() as usize;
    assert_eq!(ds2.item_table.titles[i9].as_deref(), Some("Cold One"));
    assert_eq!(
        ds2.user_table.categorical[0].get(ds2.users.get("u5").unwrap() as usize),
        Some("FR")
    );
}

#[test]
fn latin1_csv_needs_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    std::fs::write(&src, b"user,item\nJos\xe9,x\n").unwrap();
    let out = tmp.path().join("ds");
    let e = import(&src, &out, &ImportOptions::new(ImportFormat::Csv), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("log.csv:2:") && e.contains("latin-1"), "{e}");
    assert!(!out.exists());
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.encoding = TextEncoding::Latin1;
    import(&src, &out, &o, &NoProgress).unwrap();
    assert_eq!(Dataset::load(&out).unwrap().users.ids(), &["José"]);
}

#[test]
fn json_nested_map() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("r.json");
    std::fs::write(&src, r#"{"alice": {"Heat": 4, "Up": 5.0}, "bob": {"Up": 1}}"#).unwrap();
    let out = tmp.path().join("ds");
    let mut o = ImportOptions::new(ImportFormat::Json);
    o.min_rating = Some(2.0);
    let r = import(&src, &out, &o, &NoProgress).unwrap();
    assert_eq!(r.interactions, 2);
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(item_ids(&ds, "alice"), vec!["Heat", "Up"]);
}

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_log_with_integer_ids_and_mapped_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.parquet");
    write_parquet(
        &src,
        vec![
            ("customer", Arc::new(Int32Array::from(vec![7, 7, 8])) as ArrayRef),
            ("sku", Arc::new(StringArray::from(vec!["a", "b", "a"]))),
            ("score", Arc::new(Float64Array::from(vec![1.5, 2.0, 3.0]))),
            ("t", Arc::new(Int64Array::from(vec![30, 10, 20]))),
        ],
    );
    let mut o = ImportOptions::new(ImportFormat::Parquet);
    o.columns = ColumnMap {
        user: "customer".into(),
        item: "sku".into(),
        weight: Some("score".into()),
        time: Some("t".into()),
    };
    let out = tmp.path().join("ds");
    import(&src, &out, &o, &NoProgress).unwrap();
    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.users.ids(), &["7", "8"]);
    // Within a user, rows are ordered by time.
    assert_eq!(item_ids(&ds, "7"), vec!["b", "a"]);
    assert_eq!(ds.interactions.weight, vec![2.0, 1.5, 3.0]);
    assert_eq!(ds.interactions.ts, vec![10, 30, 20]);
}
