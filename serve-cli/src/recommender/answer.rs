//! `Answer`, the one shape of a ranked answer: the shell's JSON lines and the HTTP body both serialize it.

use serde::Serialize;
use twotower_index::VersionId;

/// Where a query vector came from, so answers can say how much to trust them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A user seen in training: id, features and history.
    Known,
    /// A user with features but no training interactions.
    Features,
    /// Unknown user: most popular items.
    Popularity,
    /// An anonymous user described by items (the real-time path) or an item-to-item query.
    Items,
}

impl Source {
    /// Stable name for machine output.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Known => "known",
            Source::Features => "features",
            Source::Popularity => "popularity",
            Source::Items => "items",
        }
    }
}

/// What was asked, echoed in the answer (`{"user": "u1"}`, `{"recent_items": […]}`, `{"item": "i5"}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// Top-k for a user id.
    User(String),
    /// Top-k for items just touched.
    RecentItems(Vec<String>),
    /// Items similar to an item.
    Item(String),
}

impl Query {
    /// The query as a person typed it (ids separated by spaces).
    pub fn text(&self) -> String {
        match self {
            Query::User(s) | Query::Item(s) => s.clone(),
            Query::RecentItems(v) => v.join(" "),
        }
    }
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// 1 for the best.
    pub rank: usize,
    /// Item id.
    pub item: String,
    /// Title, when the catalog has one.
    pub title: Option<String>,
    /// Genre names.
    pub genres: Vec<String>,
    /// Cosine score (popularity fallback: share of interactions).
    pub score: f32,
}

/// A ranked answer with its timings.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// What was asked.
    pub query: Query,
    /// Where the query vector came from.
    pub source: Source,
    /// The index version that answered.
    pub index_version: VersionId,
    /// Embedding plus search, ms.
    pub took_ms: f64,
    /// Best first.
    pub results: Vec<Ranked>,
    /// With `exact`: the fraction of the exact top-k that HNSW also returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_overlap: Option<f64>,
    /// Time to embed the query, ms.
    #[serde(skip)]
    pub embed_ms: f64,
    /// Time to search, ms.
    #[serde(skip)]
    pub search_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_once_with_took_ms() {
        let a = Answer {
            query: Query::User("u1".into()),
            source: Source::Known,
            index_version: VersionId(3),
            took_ms: 1.5,
            results: vec![Ranked {
                rank: 1,
                item: "i1".into(),
                title: None,
                genres: vec!["Drama".into()],
                score: 0.5,
            }],
            exact_overlap: None,
            embed_ms: 1.0,
            search_ms: 0.5,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["query"]["user"], "u1");
        assert_eq!(v["source"], "known");
        assert_eq!(v["took_ms"], 1.5);
        assert_eq!(v["results"][0]["rank"], 1);
        assert!(v.get("exact_overlap").is_none() && v.get("embed_ms").is_none());
    }
}
