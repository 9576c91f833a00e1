//! Every text importer on random bytes: an `Ok` or a clear `Err`, never a panic, and no output left
//! behind on error.

use proptest::prelude::*;
use twotower_data::{import, ImportFormat, ImportOptions, NoProgress, TextEncoding};

fn check(format: ImportFormat, setup: impl Fn(&std::path::Path) -> std::path::PathBuf, latin1: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let src = setup(tmp.path());
    let out = tmp.path().join("out");
    let mut o = ImportOptions::new(format);
    o.columns.weight = Some("w".into());
    o.columns.time = Some("t".into());
    if latin1 {
        o.encoding = TextEncoding::Latin1;
    }
    match import(&src, &out, &o, &NoProgress) {
        Ok(r) => assert!(r.interactions > 0 && out.join("manifest.json").is_file()),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(!out.exists());
        }
    }
}

/// Bytes that look a bit like the formats, so parsers get past the first field often.
fn near(alphabet: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(alphabet.as_bytes().to_vec()),
            1 => any::<u8>(),
        ],
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn csv_and_tsv_never_panic(body in near("uitw,\t\"\n0123456789.-:e"), latin1: bool) {
        for (fmt, name, head) in [(ImportFormat::Csv, "l.csv", "u,i,w,t\n"), (ImportFormat::Tsv, "l.tsv", "u\ti\tw\tt\n")] {
            let body = body.clone();
            check(fmt, move |d| {
                let p = d.join(name);
                let mut b = head.as_bytes().to_vec();
                b.extend_from_slice(&body);
                std::fs::write(&p, b).unwrap();
                p
            }, latin1);
        }
    }

    #[test]
    fn json_never_panics(body in near("{}[]\":, 0123456789.abe\n")) {
        check(ImportFormat::Json, |d| {
            let p = d.join("r.json");
            std::fs::write(&p, &body).unwrap();
            p
        }, false);
    }

    #[test]
    fn movielens_never_panic(ratings in near("0123456789:\n\t"), items in near("0123456789|:()abc\n-"), users in near("0123456789|:MF\n")) {
        check(ImportFormat::Movielens1m, |d| {
            let p = d.join("ml1m");
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("ratings.dat"), &ratings).unwrap();
            std::fs::write(p.join("movies.dat"), &items).unwrap();
            std::fs::write(p.join("users.dat"), &users).unwrap();
            p
        }, false);
        check(ImportFormat::Movielens100k, |d| {
            let p = d.join("ml100k");
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("u.data"), &ratings).unwrap();
            std::fs::write(p.join("u.item"), &items).unwrap();
            std::fs::write(p.join("u.user"), &users).unwrap();
            p
        }, false);
    }
}
