//! One twotower collection on a Milvus server, as both the index (writes) and a version (reads) see
//! it: what it records about itself, the consistency of its reads, expressions over its ids, and the
//! calls that load and count it.

use super::client::{Client, MResult, MilvusError};
use super::proto::{self, consistency};
use super::rows::ID_FIELD;
use crate::hnsw::HnswParams;
use crate::reports::VersionId;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Format of the description's JSON.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Milvus answers at most this many rows (offset + limit) per query and results per search.
pub const MAX_TOPK: usize = 16384;
/// How searches see writes: `Bounded` (Milvus's default: a few seconds of staleness, fast) or
/// `Strong` (every search waits for all earlier writes; costs a time-tick wait per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Every search sees every write acknowledged before it.
    Strong,
    /// Searches may miss writes of the last few seconds.
    Bounded,
}

impl Consistency {
    pub(super) fn level(self) -> i32 {
        match self {
            Consistency::Strong => consistency::STRONG,
            Consistency::Bounded => consistency::BOUNDED,
        }
    }
}

/// What a version's collection records about itself (in its schema description).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilvusInfo {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Fingerprint of the model whose item tower produced the vectors.
    pub model_fingerprint: String,
    /// Always [`METRIC`] (inner product on unit vectors).
    pub metric: String,
    /// Vector dimension.
    pub dim: usize,
    /// Graph parameters of the collection's HNSW index.
    pub hnsw: HnswParams,
    /// The version whose live set this one rebuilt, if any.
    pub parent: Option<VersionId>,
}

/// Quotes a string as a Milvus expression's double-quoted literal, completely. Milvus's grammar
/// (`internal/parser/planparserv2/Plan.g4`: `DoubleSChar: ~["\\\r\n] | EscapeSequence`) takes any
/// character but the quote, the backslash, CR and LF raw, and C-style escapes (`\"`, `\\`, `\n`,
/// `\r`, `\t`, `\uXXXX`), which the server decodes as Go's `strconv.Unquote` does. So the quote and
/// the backslash are escaped, newline, CR and tab get their short escapes, and every other control
/// character (C0, DEL, C1) a `\uXXXX` escape: any string round-trips, and none can end the literal
/// or break the expression.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `id in ["a", "b"]`.
pub(super) fn id_in(ids: &[&str]) -> String {
    let list: Vec<String> = ids.iter().map(|i| quote(i)).collect();
    format!("{ID_FIELD} in [{}]", list.join(", "))
}

/// Polls `done` every `every` until it says yes or `limit` passes.
pub(super) fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> MResult<bool>,
) -> MResult<()> {
    let start = Instant::now();
    let mut every = Duration::from_millis(50);
    loop {
        if done()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(MilvusError::Malformed {
                op: "wait",
                problem: format!("{what} did not finish within {limit:?}"),
            });
        }
        std::thread::sleep(every);
        every = (every * 2).min(Duration::from_millis(500));
    }
}

pub(super) fn load(client: &Client, collection: &str, limit: Duration) -> MResult<()> {
    let r: proto::Status = client.call_admin(
        "LoadCollection",
        proto::LoadCollectionRequest {
            collection_name: collection.to_string(),
            replica_number: 0,
        },
    )?;
    drop(r);
    wait_until("loading the collection", limit, || {
        Ok(load_state(client, collection)? == proto::load_state::LOADED)
    })
}

pub(super) fn load_state(client: &Client, collection: &str) -> MResult<i32> {
    let s: proto::GetLoadStateResponse = client.call(
        "GetLoadState",
        proto::GetLoadStateRequest {
            collection_name: collection.to_string(),
        },
    )?;
    Ok(s.state)
}

pub(super) fn count(client: &Client, collection: &str, level: i32) -> MResult<usize> {
    let r: proto::QueryResults = client.call_admin(
        "Query",
        proto::QueryRequest {
            collection_name: collection.to_string(),
            expr: String::new(),
            output_fields: vec!["count(*)".into()],
            query_params: vec![],
            consistency_level: level,
            use_default_consistency: false,
        },
    )?;
    for f in r.fields_data {
        if let Some(proto::field_data::Field::Scalars(proto::ScalarField {
            data: Some(proto::scalar_field::Data::LongData(a)),
        })) = f.field
        {
            if let Some(&n) = a.data.first() {
                return Ok(n.max(0) as usize);
            }
        }
    }
    Err(MilvusError::Malformed {
        op: "Query",
        problem: format!("count(*) of {collection} returned no number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_quote_ids() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(id_in(&["1", "x\"y"]), r#"id in ["1", "x\"y"]"#);
    }
    #[test]
    fn expressions_quote_every_character_the_grammar_needs_escaped() {
        assert_eq!(quote("X\nY"), r#""X\nY""#);
        assert_eq!(quote("a\r\nb\tc"), r#""a\r\nb\tc""#);
        assert_eq!(
            quote("nul\0 esc\u{1b} del\u{7f} c1\u{85}"),
            r#""nul\u0000 esc\u001b del\u007f c1\u0085""#
        );
        // A trailing backslash cannot escape the closing quote.
        assert_eq!(quote("x\\"), r#""x\\""#);
        assert_eq!(quote(r#"" || id != ""#), r#""\" || id != \"""#);
        assert_eq!(quote("Amélie 東京 🎬"), "\"Amélie 東京 🎬\"");
        // What the grammar forbids raw never appears raw between the quotes.
        for s in ["a\nb", "\r", "\0", "x\u{1b}"] {
            let q = quote(s);
            assert!(!q.chars().any(char::is_control), "{q:?}");
        }
    }
}
