//! `index check` of a Milvus version: its rows are read back into an in-process [`ExactIndex`], so
//! the server's HNSW answers are compared with exact search over exactly the rows it holds.

use super::version::MilvusVersion;
use crate::check::Checked;
use crate::error::Result;
use crate::exact::ExactIndex;
use crate::search::{Hit, VectorIndex};
use std::collections::HashMap;
use twotower_data::progress::Progress;

/// A Milvus version beside an exact index of the same rows.
pub struct MilvusChecked {
    version: MilvusVersion,
    exact: ExactIndex,
    ids: Vec<String>,
    rows: HashMap<String, u32>,
}

impl MilvusChecked {
    /// Reads every row of `version` (one paged scan).
    pub fn new(version: MilvusVersion, progress: &dyn Progress) -> Result<MilvusChecked> {
        progress.start("reading the collection back", Some(version.rows() as u64));
        let all = version.read_all(progress)?;
        progress.finish();
        let dim = version.info().dim;
        let exact = ExactIndex::from_rows(dim, &all.vectors, Some(&all.ids))?;
        let rows = all
            .ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.clone(), r as u32))
            .collect();
        Ok(MilvusChecked {
            version,
            exact,
            ids: all.ids,
            rows,
        })
    }

    /// The version measured.
    pub fn version(&self) -> &MilvusVersion {
        &self.version
    }
}

impl Checked for MilvusChecked {
    fn dim(&self) -> usize {
        self.version.info().dim
    }
    fn default_ef(&self) -> usize {
        self.version.info().hnsw.ef_search
    }
    fn live_rows(&self) -> Vec<u32> {
        (0..self.ids.len() as u32).collect()
    }
    fn row_vector(&self, row: u32) -> &[f32] {
        self.exact.row(row)
    }
    fn row_id(&self, row: u32) -> &str {
        &self.ids[row as usize]
    }
    fn exact_batch(&self, qs: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.exact.search_batch(qs, k, None)
    }
    fn exact_one(&self, q: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.exact.search(q, k, None)
    }
    fn approx(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        let hits = self.version.search_batch(q, k, ef, "")?.pop().unwrap_or_default();
        // An id the scan did not see (written since) cannot be scored against the truth: left out.
        Ok(hits
            .into_iter()
            .filter_map(|(id, score)| self.rows.get(&id).map(|&row| Hit { row, score }))
            .collect())
    }
}
