//! [`ItemRows`]: what a front end hands any backend to write (ids, vectors, and the titles and genres
//! a backend with server-side filters stores), and what a backend reads back.

use crate::error::{Error, Result};
use std::collections::HashSet;

/// Items: ids, vectors (row-major) and, where a backend stores them, titles and genres.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemRows {
    /// Item ids, unique.
    pub ids: Vec<String>,
    /// `ids.len() × dim` components.
    pub vectors: Vec<f32>,
    /// Title per item ("" when none); empty when the rows carry no attributes.
    pub titles: Vec<String>,
    /// Genres per item; empty when the rows carry no attributes.
    pub genres: Vec<Vec<String>>,
}

impl ItemRows {
    /// Rows without titles or genres.
    pub fn bare(ids: Vec<String>, vectors: Vec<f32>) -> ItemRows {
        ItemRows {
            ids,
            vectors,
            titles: Vec::new(),
            genres: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether titles and genres come with the rows.
    pub fn has_attributes(&self) -> bool {
        !self.titles.is_empty() || !self.genres.is_empty()
    }

    /// The vector of row `r`.
    pub fn vector(&self, r: usize, dim: usize) -> &[f32] {
        &self.vectors[r * dim..(r + 1) * dim]
    }

    /// Appends row `r` of `other` (with its attributes, when `other` has them).
    pub fn push_from(&mut self, other: &ItemRows, r: usize, dim: usize) {
        self.ids.push(other.ids[r].clone());
        self.vectors.extend_from_slice(other.vector(r, dim));
        if other.has_attributes() {
            self.titles.push(other.titles[r].clone());
            self.genres.push(other.genres[r].clone());
        }
    }

    /// Appends the rows of `other` whose id is not already here (the same attributes or none).
    pub fn extend_missing(&mut self, other: &ItemRows, dim: usize) {
        let have: HashSet<String> = self.ids.iter().cloned().collect();
        for r in 0..other.len() {
            if !have.contains(&other.ids[r]) {
                self.push_from(other, r, dim);
            }
        }
    }

    /// Shapes agree (`dim`-wide vectors, attributes for all rows or none) and ids are unique and not
    /// empty.
    pub fn check(&self, dim: usize) -> Result<()> {
        let n = self.ids.len();
        let attrs_ok = !self.has_attributes() || (self.titles.len() == n && self.genres.len() == n);
        if self.vectors.len() != n * dim || !attrs_ok {
            return Err(Error::BadIds(format!(
                "{n} ids, {} vector components (dimension {dim}), {} titles, {} genre lists",
                self.vectors.len(),
                self.titles.len(),
                self.genres.len()
            )));
        }
        let mut seen = HashSet::with_capacity(n);
        for (r, id) in self.ids.iter().enumerate() {
            if id.is_empty() {
                return Err(Error::BadIds(format!("row {r}: empty item id")));
            }
            if !seen.insert(id.as_str()) {
                return Err(Error::BadIds(format!("item id {id:?} appears twice")));
            }
        }
        Ok(())
    }
}
