//! Parquet logs with the same column-mapping flags as CSV. Id columns of any type that casts to text
//! (integers included) are accepted; weight casts to Float32, time to Int64.

use std::path::Path;

use super::{ColumnMap, Parsed};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::schema::{read_interactions_with, InteractionColumns};

pub(crate) fn parse(path: &Path, cols: &ColumnMap, mut p: Parsed, progress: &dyn Progress) -> Result<Parsed> {
    progress.start("reading parquet log", None);
    let c = InteractionColumns {
        user: &cols.user,
        item: &cols.item,
        weight: cols.weight.as_deref(),
        ts: cols.time.as_deref(),
    };
    p.x = read_interactions_with(path, &c, &mut p.users, &mut p.items)?;
    progress.inc(p.x.len() as u64);
    progress.finish();
    if p.x.is_empty() {
        return Err(Error::Empty {
            file: path.to_path_buf(),
            what: "the Parquet file has no rows".into(),
        });
    }
    Ok(p)
}
