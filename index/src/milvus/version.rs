//! [`MilvusVersion`]: one index version (a collection) opened for searching, point reads and scans.

use super::client::{Client, MilvusError, MilvusUri};
use super::collection::{count, id_in, load, load_state, quote, Consistency, MilvusInfo, MAX_TOPK};
use super::proto::{self, consistency, kv};
use super::rows::{rows_of, GENRES_FIELD, ID_FIELD, TITLE_FIELD, VECTOR_FIELD};
use crate::error::{Error, Result};
use crate::reports::VersionId;
use crate::rows::ItemRows;
use prost::Message;
use std::collections::HashSet;
use twotower_data::progress::Progress;

/// A version to search: one collection, fixed for the handle's life (a reader moves to a rebuilt
/// version by opening the alias again, as with an index directory).
#[derive(Debug, Clone)]
pub struct MilvusVersion {
    pub(super) client: Client,
    pub(super) uri: MilvusUri,
    pub(super) collection: String,
    pub(super) version: VersionId,
    pub(super) info: MilvusInfo,
    pub(super) rows: usize,
    pub(super) consistency: Consistency,
}

/// Rows per page when reading a collection back.
const PAGE: usize = 4096;

impl MilvusVersion {
    /// The version.
    pub fn version(&self) -> VersionId {
        self.version
    }

    /// Its collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Where it lives.
    pub fn uri(&self) -> &MilvusUri {
        &self.uri
    }

    /// What the collection records about itself.
    pub fn info(&self) -> &MilvusInfo {
        &self.info
    }

    /// Rows when it was opened.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rows now.
    pub fn count(&self) -> Result<usize> {
        Ok(count(&self.client, &self.collection, self.consistency.level())?)
    }

    /// Loads the collection when the server has it released (after a restart, Milvus Lite does),
    /// waiting at most one call's timeout: this runs on the request path.
    pub fn ensure_loaded(&self) -> Result<()> {
        if load_state(&self.client, &self.collection)? != proto::load_state::LOADED {
            load(&self.client, &self.collection, self.client.timeout())?;
        }
        Ok(())
    }

    /// The stored rows of `ids` (those present), with vectors when `vectors`.
    /// Reads with strong consistency (a writer comparing against what it wrote); `vector` reads at the
    /// handle's level instead, being on the request path.
    pub fn fetch(&self, ids: &[&str], vectors: bool) -> Result<ItemRows> {
        self.fetch_at(ids, vectors, consistency::STRONG)
    }

    fn fetch_at(&self, ids: &[&str], vectors: bool, level: i32) -> Result<ItemRows> {
        let mut out = ItemRows::default();
        let mut fields = vec![ID_FIELD.to_string(), TITLE_FIELD.into(), GENRES_FIELD.into()];
        if vectors {
            fields.push(VECTOR_FIELD.into());
        }
        let dim = self.info.dim;
        for chunk in ids.chunks(1000) {
            let r: proto::QueryResults = self.client.call(
                "Query",
                proto::QueryRequest {
                    collection_name: self.collection.clone(),
                    expr: id_in(chunk),
                    output_fields: fields.clone(),
                    query_params: vec![kv("limit", chunk.len().to_string())],
                    consistency_level: level,
                    use_default_consistency: false,
                },
            )?;
            let page = rows_of("Query", r.fields_data, dim)?;
            for i in 0..page.len() {
                out.ids.push(page.ids[i].clone());
                if vectors {
                    out.vectors
                        .extend_from_slice(&page.vectors[i * dim..(i + 1) * dim]);
                }
                out.titles.push(page.titles[i].clone());
                out.genres.push(page.genres[i].clone());
            }
        }
        Ok(out)
    }

    /// Every row, in id order, paged by primary key; checked against `count(*)`.
    pub fn read_all(&self, progress: &dyn Progress) -> Result<ItemRows> {
        let dim = self.info.dim;
        let mut out = ItemRows::default();
        let mut last: Option<String> = None;
        loop {
            let expr = match &last {
                None => format!("{ID_FIELD} != \"\""),
                Some(l) => format!("{ID_FIELD} > {}", quote(l)),
            };
            let r: proto::QueryResults = self.client.call_admin(
                "Query",
                proto::QueryRequest {
                    collection_name: self.collection.clone(),
                    expr,
                    output_fields: vec![
                        ID_FIELD.into(),
                        VECTOR_FIELD.into(),
                        TITLE_FIELD.into(),
                        GENRES_FIELD.into(),
                    ],
                    query_params: vec![kv("limit", PAGE.to_string())],
                    consistency_level: consistency::STRONG,
                    use_default_consistency: false,
                },
            )?;
            let page = rows_of("Query", r.fields_data, dim)?;
            let n = page.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| page.ids[a].cmp(&page.ids[b]));
            for &i in &order {
                out.push_from(&page, i, dim);
            }
            progress.inc(n as u64);
            if n < PAGE {
                break;
            }
            last = order.last().map(|&i| page.ids[i].clone());
        }
        let total = count(&self.client, &self.collection, consistency::STRONG)?;
        let distinct: HashSet<&str> = out.ids.iter().map(String::as_str).collect();
        if distinct.len() != total || out.len() != total {
            return Err(MilvusError::Malformed {
                op: "Query",
                problem: format!(
                    "reading {} back gave {} rows ({} distinct) but it holds {total}",
                    self.collection,
                    out.len(),
                    distinct.len()
                ),
            }
            .into());
        }
        Ok(out)
    }

    /// The `k` nearest rows to each of the row-major `queries` (unit vectors; inner product = cosine)
    /// among those `expr` keeps ("" for all), best first, as (id, score).
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        expr: &str,
    ) -> Result<Vec<Vec<(String, f32)>>> {
        let dim = self.info.dim;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                what: "queries".into(),
                expected: dim,
                got: queries.len() % dim,
            });
        }
        let nq = queries.len() / dim;
        if nq == 0 {
            return Ok(Vec::new());
        }
        let k = k.clamp(1, MAX_TOPK);
        let values = queries
            .chunks_exact(dim)
            .map(|q| q.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let group = proto::PlaceholderGroup {
            placeholders: vec![proto::PlaceholderValue {
                tag: "$0".into(),
                r#type: proto::PLACEHOLDER_FLOAT_VECTOR,
                values,
            }],
        };
        let req = proto::SearchRequest {
            collection_name: self.collection.clone(),
            dsl: expr.to_string(),
            placeholder_group: group.encode_to_vec(),
            dsl_type: proto::DSL_BOOL_EXPR,
            output_fields: vec![],
            search_params: vec![
                kv("anns_field", VECTOR_FIELD),
                kv("topk", k.to_string()),
                kv("metric_type", "IP"),
                kv("params", format!("{{\"ef\": {}}}", ef.clamp(k, 32768))),
                kv("round_decimal", "-1"),
            ],
            nq: nq as i64,
            consistency_level: self.consistency.level(),
            use_default_consistency: false,
        };
        let r: proto::SearchResults = match self.client.call("Search", req.clone()) {
            Err(e) if e.is_not_loaded() => {
                // A restarted server has the collection released: load it again and retry once.
                load(&self.client, &self.collection, self.client.timeout())?;
                self.client.call("Search", req)?
            }
            r => r?,
        };
        let malformed = |problem: String| -> Error {
            MilvusError::Malformed {
                op: "Search",
                problem,
            }
            .into()
        };
        let Some(data) = r.results else {
            return Ok(vec![Vec::new(); nq]);
        };
        let ids = match data.ids.and_then(|i| i.id_field) {
            Some(proto::ids::IdField::StrId(s)) => s.data,
            None => Vec::new(),
            Some(proto::ids::IdField::IntId(_)) => {
                return Err(malformed("integer ids in a twotower collection".into()))
            }
        };
        let topks: Vec<usize> = if data.topks.is_empty() {
            vec![data.top_k.max(0) as usize; nq]
        } else {
            data.topks.iter().map(|&t| t.max(0) as usize).collect()
        };
        if topks.len() != nq || topks.iter().sum::<usize>() != ids.len() || ids.len() != data.scores.len() {
            return Err(malformed(format!(
                "{nq} queries, {} per-query counts summing to {}, {} ids, {} scores",
                topks.len(),
                topks.iter().sum::<usize>(),
                ids.len(),
                data.scores.len()
            )));
        }
        let mut out = Vec::with_capacity(nq);
        let mut at = 0;
        let mut ids = ids.into_iter();
        for t in topks {
            let hits = ids
                .by_ref()
                .take(t)
                .zip(data.scores[at..at + t].iter().copied())
                .collect();
            at += t;
            out.push(hits);
        }
        Ok(out)
    }

    /// The stored vector of one item, `None` when the collection does not hold it.
    pub fn vector(&self, id: &str) -> Result<Option<Vec<f32>>> {
        let r = self.fetch_at(&[id], true, self.consistency.level())?;
        Ok((!r.is_empty()).then_some(r.vectors))
    }
}
