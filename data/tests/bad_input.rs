//! Bad input is a clear error naming file and line (or column), and leaves no output behind.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use twotower_data::{import, Dataset, Error, ImportFormat, ImportOptions, NoProgress};

fn run(format: ImportFormat, src: &Path, out: &Path) -> Error {
    import(src, out, &ImportOptions::new(format), &NoProgress).unwrap_err()
}

/// Nothing but the inputs is left in `dir` (no output dir, no staging leftovers).
fn only(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn malformed_movielens_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ml");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("movies.dat"), "1::A (1990)::Drama\n").unwrap();
    std::fs::write(src.join("users.dat"), "1::F::1::10::48067\n").unwrap();
    std::fs::write(
        src.join("ratings.dat"),
        "1::1::5::978300760\n1::1::five::978300761\n",
    )
    .unwrap();
    let out = tmp.path().join("ds");
    let e = run(ImportFormat::Movielens1m, &src, &out).to_string();
    assert!(
        e.ends_with("ratings.dat:2: rating \"five\" is not a number"),
        "{e}"
    );
    std::fs::write(src.join("ratings.dat"), "1::1::5\n").unwrap();
    let e = run(ImportFormat::Movielens1m, &src, &out).to_string();
    assert!(e.contains("ratings.dat:1: expected 4 fields"), "{e}");
    std::fs::write(src.join("ratings.dat"), "").unwrap();
    assert!(matches!(
        run(ImportFormat::Movielens1m, &src, &out),
        Error::Empty { .. }
    ));
    only(tmp.path(), &["ml"]);
}

#[test]
fn missing_movielens_file() {
    let tmp = tempfile::tempdir().unwrap();
    let e = run(ImportFormat::Movielens100k, tmp.path(), &tmp.path().join("ds")).to_string();
    assert!(e.contains("u.item") && e.contains("MovieLens folder"), "{e}");
}

#[test]
fn csv_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    let out = tmp.path().join("ds");
    std::fs::write(&src, "").unwrap();
    let e = run(ImportFormat::Csv, &src, &out).to_string();
    assert!(e.contains("empty file"), "{e}");
    std::fs::write(&src, "user,item\n").unwrap();
    let e = run(ImportFormat::Csv, &src, &out).to_string();
    assert!(e.contains("header only, no data rows"), "{e}");
    std::fs::write(&src, "user,item\na,b\nc\n").unwrap();
    let e = run(ImportFormat::Csv, &src, &out).to_string();
    assert!(
        e.contains("log.csv:3: expected 2 fields like the header, found 1"),
        "{e}"
    );
    std::fs::write(&src, "usr,item\na,b\n").unwrap();
    let e = run(ImportFormat::Csv, &src, &out).to_string();
    assert!(
        e.contains("no column named \"user\"") && e.contains("usr, item"),
        "{e}"
    );
    std::fs::write(&src, "user,item,w\na,b,x\n").unwrap();
    let mut o = ImportOptions::new(ImportFormat::Csv);
    o.columns.weight = Some("w".into());
    let e = import(&src, &out, &o, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("log.csv:2: w \"x\" is not a number"), "{e}");
    only(tmp.path(), &["log.csv"]);
}

#[test]
fn json_wrong_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("r.json");
    let out = tmp.path().join("ds");
    for (text, want) in [
        ("[{\"u\": 1}]", "expected an object mapping user ids"),
        ("{\"u\": {\"i\": \"5\"}}", "r.json:1:"),
        ("{\"u\": 3}", "numeric ratings"),
        ("{}", "no interactions"),
        ("  ", "empty file"),
        ("{\"u\": {\"i\": 1}", "EOF"),
    ] {
        std::fs::write(&src, text).unwrap();
        let e = run(ImportFormat::Json, &src, &out).to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    only(tmp.path(), &["r.json"]);
}

#[test]
fn parquet_missing_mapped_column() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("user", arrow::datatypes::DataType::Utf8, false),
        Field::new("product", arrow::datatypes::DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["a"])),
        Arc::new(StringArray::from(vec!["b"])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(&src).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = run(ImportFormat::Parquet, &src, &tmp.path().join("ds")).to_string();
    assert!(
        e.contains("log.parquet: no column named \"item\" (columns present: user, product)"),
        "{e}"
    );
    // Not a parquet file at all.
    std::fs::write(&src, "user,item\n").unwrap();
    let e = run(ImportFormat::Parquet, &src, &tmp.path().join("ds")).to_string();
    assert!(e.contains("log.parquet: parquet"), "{e}");
    only(tmp.path(), &["log.parquet"]);
}

#[test]
fn failed_reimport_keeps_the_old_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    let out = tmp.path().join("ds");
    std::fs::write(&src, "user,item\na,b\n").unwrap();
    import(&src, &out, &ImportOptions::new(ImportFormat::Csv), &NoProgress).unwrap();
    let before = Dataset::load(&out).unwrap().fingerprint();
    std::fs::write(&src, "user,item\na,b\nbroken\n").unwrap();
    assert!(import(&src, &out, &ImportOptions::new(ImportFormat::Csv), &NoProgress).is_err());
    assert_eq!(Dataset::load(&out).unwrap().fingerprint(), before);
    only(tmp.path(), &["log.csv", "ds"]);
}

#[test]
fn corrupt_or_foreign_dataset_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.csv");
    let out = tmp.path().join("ds");
    std::fs::write(&src, "user,item\na,b\n").unwrap();
    import(&src, &out, &ImportOptions::new(ImportFormat::Csv), &NoProgress).unwrap();
    let p = out.join("users.parquet");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&p, bytes).unwrap();
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(e.contains("users.parquet: sha256 mismatch"), "{e}");
    let e = Dataset::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("no manifest.json"), "{e}");
}

#[test]
fn never_replaces_a_folder_that_is_not_a_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("ml");
    std::fs::create_dir(&raw).unwrap();
    std::fs::write(raw.join("movies.dat"), "1::A (1990)::Drama\n").unwrap();
    std::fs::write(raw.join("users.dat"), "1::F::1::10::48067\n").unwrap();
    std::fs::write(raw.join("ratings.dat"), "1::1::5::978300760\n").unwrap();
    // --out pointing at the raw folder itself.
    let e = import(
        &raw,
        &raw,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("refusing to replace"), "{e}");
    assert!(raw.join("ratings.dat").is_file());
    let e = twotower_data::synth(&raw, &twotower_data::SynthOptions::default(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to replace"), "{e}");
    // An empty folder or an existing dataset may be replaced.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    import(
        &raw,
        &empty,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap();
    import(
        &raw,
        &empty,
        &ImportOptions::new(ImportFormat::Movielens1m),
        &NoProgress,
    )
    .unwrap();
}
