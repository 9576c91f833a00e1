//! Per-row feature encodings of the catalog and the user base, as dense indices ready for embedding
//! lookups: single-valued categorical columns, multi-valued ones in CSR form, and title tokens.

use crate::vocab::Vocabulary;

/// One categorical column: one value per row, `vocab.oov()` where the value is missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Categorical {
    /// Column name (e.g. "year", "gender").
    pub name: String,
    /// The column's distinct values.
    pub vocab: Vocabulary,
    /// Value index per row.
    pub values: Vec<u32>,
}

impl Categorical {
    /// Builds a column from optional string values; the vocabulary is in order of first appearance.
    pub fn from_values<'a, I>(name: &str, values: I) -> Categorical
    where
        I: IntoIterator<Item = Option<&'a str>>,
    {
        let mut vocab = Vocabulary::new();
        let mut idx = Vec::new();
        let mut missing = Vec::new();
        for (r, v) in values.into_iter().enumerate() {
            match v {
                Some(s) => idx.push(vocab.insert(s)),
                None => {
                    missing.push(r);
                    idx.push(0);
                }
            }
        }
        let oov = vocab.oov();
        for r in missing {
            idx[r] = oov;
        }
        Categorical {
            name: name.to_string(),
            vocab,
            values: idx,
        }
    }

    /// The value of row `r`, `None` when missing.
    pub fn get(&self, r: usize) -> Option<&str> {
        let v = self.values[r];
        (v < self.vocab.oov()).then(|| self.vocab.id(v))
    }
}

/// A multi-valued categorical column in CSR form: row `r` has `values[offsets[r]..offsets[r + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiCategorical {
    /// Column name (e.g. "genres", "title_tokens").
    pub name: String,
    /// The column's distinct values.
    pub vocab: Vocabulary,
    /// Row starts into `values`; `len() == rows + 1`.
    pub offsets: Vec<u32>,
    /// Value indices of all rows, concatenated.
    pub values: Vec<u32>,
}

impl MultiCategorical {
    /// An empty column with zero rows.
    pub fn empty(name: &str) -> MultiCategorical {
        MultiCategorical {
            name: name.to_string(),
            vocab: Vocabulary::new(),
            offsets: vec![0],
            values: Vec::new(),
        }
    }

    /// Builds a column from per-row value lists; the vocabulary is in order of first appearance.
    pub fn from_rows<I, R, S>(name: &str, rows: I) -> MultiCategorical
    where
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut m = MultiCategorical::empty(name);
        for row in rows {
            m.push_row(row);
        }
        m
    }

    /// Appends a row, adding unseen values to the vocabulary.
    pub fn push_row<R, S>(&mut self, row: R)
    where
        R: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for v in row {
            let i = self.vocab.insert(v.as_ref());
            self.values.push(i);
        }
        self.offsets.push(self.values.len() as u32);
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The value indices of row `r`.
    pub fn row(&self, r: usize) -> &[u32] {
        &self.values[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }
}

/// Features of every item in the dataset's item vocabulary: row `i` describes `Dataset::items.id(i)`.
/// Items that only appear in interactions have no title, no genres and missing categorical values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemTable {
    /// Display title per item.
    pub titles: Vec<Option<String>>,
    /// Genre bag per item.
    pub genres: MultiCategorical,
    /// [`tokenize_title`] of each title, as a bag of tokens.
    pub title_tokens: MultiCategorical,
    /// Further single-valued columns of items.parquet (e.g. "year"), in file order.
    pub categorical: Vec<Categorical>,
}

/// Features of every user in the dataset's user vocabulary: row `u` describes `Dataset::users.id(u)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserTable {
    /// The categorical columns of users.parquet (e.g. "gender", "age"), in file order.
    pub categorical: Vec<Categorical>,
}

/// Splits a title into lower-cased word tokens (letters and digits; apostrophes are dropped so
/// "Children's" is one token). The same function encodes new items at serving time, so training and
/// serving agree on tokens.
pub fn tokenize_title(title: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if c == '\'' || c == '\u{2019}' {
            // inside a word: skip, so "don't" -> "dont"
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_lowercases_and_splits() {
        assert_eq!(
            tokenize_title("Shawshank Redemption, The (1994)"),
            vec!["shawshank", "redemption", "the", "1994"]
        );
        assert_eq!(tokenize_title("Children's Day"), vec!["childrens", "day"]);
        assert_eq!(tokenize_title("Amélie  ÉTÉ"), vec!["amélie", "été"]);
        assert!(tokenize_title("  --  ").is_empty());
    }

    #[test]
    fn categorical_missing_is_oov() {
        let c = Categorical::from_values("g", [Some("a"), None, Some("b"), Some("a")]);
        assert_eq!(c.values, vec![0, 2, 1, 0]);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(2), Some("b"));
    }

    #[test]
    fn multicategorical_csr() {
        let m = MultiCategorical::from_rows("g", [vec!["a", "b"], vec![], vec!["b"]]);
        assert_eq!(m.rows(), 3);
        assert_eq!(m.row(0), &[0, 1]);
        assert!(m.row(1).is_empty());
        assert_eq!(m.row(2), &[1]);
    }
}
