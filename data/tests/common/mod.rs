//! What the data crate's integration tests share: the real MovieLens copies in `../shared/data`.

use std::path::{Path, PathBuf};

/// `../shared/data/NAME` when it is there. Absent, the calling test is skipped with a printed
/// reason on a developer's machine, and fails in CI (env `CI`), which always has `../shared`.
pub fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    if p.is_dir() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "../shared/data/{name} is missing: CI runs with ../shared beside the clone"
    );
    eprintln!("skipped: ../shared/data/{name} not present");
    None
}
