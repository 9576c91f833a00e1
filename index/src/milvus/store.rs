//! Index versions on a Milvus server, the counterpart of [`crate::IndexDir`]: version N of index
//! `movies` is the collection `movies__v0003` (primary key = item id, the unit vector, title and
//! genres for filters), and the alias `movies` is `CURRENT`. A build fills and indexes a new
//! collection, checks its row count, and only then moves the alias, which Milvus does atomically; a
//! build that dies leaves the alias where it was and a collection that `gc` drops. `add_items` upserts
//! and deletes in the served collection itself, by primary key, with the directory index's live-set
//! rules (unchanged vectors skipped, removals win).

use super::client::{Client, ConnectOptions, MResult, MilvusError, MilvusUri};
use super::collection::{count, id_in, load, load_state, wait_until, Consistency, MilvusInfo};
use super::proto::{self, consistency, data_type, kv};
use super::rows::{
    check_rows, fields_of, fit_title, GENRES_FIELD, ID_FIELD, MAX_GENRE, MAX_GENRES, MAX_ID, MAX_TITLE,
    TITLE_FIELD, VECTOR_FIELD,
};
use super::version::MilvusVersion;
use crate::error::{Error, Result};
use crate::hnsw::HnswParams;
use crate::metric::normalize_rows;
use crate::reports::{AddReport, GcReport, RebuildReport, VersionId};
use crate::rows::ItemRows;
use crate::store::{same_bits, METRIC};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use twotower_data::progress::Progress;

/// What the schema description starts with, so another tool's collection is never taken for ours.
const DESCRIPTION_TAG: &str = "twotower index ";
/// The collection property holding [`MilvusInfo`] as JSON (Milvus Lite keeps properties but not the
/// schema description, so both are written and the property is read first).
const INFO_PROPERTY: &str = "twotower.index";
use super::collection::FORMAT_VERSION;

/// An index on a Milvus server: its versions (collections) and the alias that names the served one.
#[derive(Debug, Clone)]
pub struct MilvusIndex {
    client: Client,
    uri: MilvusUri,
    consistency: Consistency,
}

/// How long a build waits for Milvus to flush, index and load a collection.
const BUILD_WAIT: Duration = Duration::from_secs(3600);

impl MilvusIndex {
    /// Opens `milvus://HOST[:PORT]/NAME[?timeout_ms=N&consistency=bounded|strong]` with credentials
    /// from [`super::TOKEN_ENV`]. `timeout_ms` bounds each call (default 5000); `consistency` is how
    /// searches see recent writes (default `bounded`).
    pub fn open(address: &str) -> Result<MilvusIndex> {
        let (base, query) = address.split_once('?').unwrap_or((address, ""));
        let uri = MilvusUri::parse(base)?;
        let bad = |problem: String| -> Error {
            MilvusError::BadUri {
                uri: address.to_string(),
                problem,
            }
            .into()
        };
        let mut opts = ConnectOptions::default();
        let mut level = Consistency::Bounded;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("timeout_ms", v)) => {
                    let ms: u64 = v
                        .parse()
                        .map_err(|_| bad(format!("timeout_ms={v} is not a number")))?;
                    opts.timeout = Duration::from_millis(ms.max(1));
                }
                Some(("consistency", "strong")) => level = Consistency::Strong,
                Some(("consistency", "bounded")) => level = Consistency::Bounded,
                _ => {
                    return Err(bad(format!(
                        "unknown option {pair:?} (options: timeout_ms=N, consistency=bounded|strong)"
                    )))
                }
            }
        }
        MilvusIndex::new(uri, &opts, level)
    }

    /// A handle on the index `uri` names; nothing is sent until the first call.
    pub fn new(uri: MilvusUri, opts: &ConnectOptions, consistency: Consistency) -> Result<MilvusIndex> {
        let client = Client::new(&uri, opts)?;
        Ok(MilvusIndex {
            client,
            uri,
            consistency,
        })
    }

    /// The address and name.
    pub fn uri(&self) -> &MilvusUri {
        &self.uri
    }

    /// The connection (for probes such as the server version).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection of version `v`.
    pub fn collection(&self, v: VersionId) -> String {
        format!("{}__v{v}", self.uri.name)
    }

    fn version_of(&self, collection: &str) -> Option<VersionId> {
        let rest = collection.strip_prefix(&self.uri.name)?.strip_prefix("__v")?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }

    /// Versions present on the server, ascending.
    pub fn versions(&self) -> Result<Vec<VersionId>> {
        let r: proto::ShowCollectionsResponse = self
            .client
            .call_admin("ShowCollections", proto::ShowCollectionsRequest::default())?;
        let mut v: Vec<VersionId> = r
            .collection_names
            .iter()
            .filter_map(|c| self.version_of(c))
            .collect();
        v.sort();
        Ok(v)
    }

    /// The version the alias names; `None` when the index has never been built.
    pub fn current(&self) -> Result<Option<VersionId>> {
        let r = self.client.call::<_, proto::DescribeCollectionResponse>(
            "DescribeCollection",
            proto::DescribeCollectionRequest {
                collection_name: self.uri.name.clone(),
            },
        );
        match r {
            Ok(d) => {
                // The collection an alias names is the schema's name; Milvus 2.3 echoes the alias
                // in `collection_name`, Milvus Lite gives the collection there.
                let schema_name = d.schema.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
                match self.version_of(schema_name).or_else(|| self.version_of(&d.collection_name)) {
                    Some(v) => Ok(Some(v)),
                    None => Err(MilvusError::Malformed {
                        op: "DescribeCollection",
                        problem: format!(
                            "{} names the collection {:?}, which is not a twotower index version (expected {}__vNNNN)",
                            self.uri.name, schema_name, self.uri.name
                        ),
                    }
                    .into()),
                }
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The version the alias names; an error naming the index when there is none.
    pub fn current_required(&self) -> Result<VersionId> {
        self.current()?.ok_or_else(|| {
            MilvusError::Server {
                op: "DescribeCollection",
                code: 100,
                reason: format!(
                    "no index {} (run `twotower index build --index {}` first)",
                    self.uri, self.uri
                ),
            }
            .into()
        })
    }

    /// Opens the served version; with `expected_model`, one built from another model is refused.
    pub fn open_current(&self, expected_model: Option<&str>) -> Result<MilvusVersion> {
        let v = self.current_required()?;
        self.open_version(v, expected_model)
    }

    /// Opens version `v`: reads its description and row count, and loads it if the server has not.
    pub fn open_version(&self, v: VersionId, expected_model: Option<&str>) -> Result<MilvusVersion> {
        let collection = self.collection(v);
        let d: proto::DescribeCollectionResponse = self.client.call_admin(
            "DescribeCollection",
            proto::DescribeCollectionRequest {
                collection_name: collection.clone(),
            },
        )?;
        let desc = d.schema.map(|s| s.description).unwrap_or_default();
        let property = d
            .properties
            .iter()
            .find(|p| p.key == INFO_PROPERTY)
            .map(|p| p.value.as_str());
        let info: MilvusInfo = property
            .or_else(|| desc.strip_prefix(DESCRIPTION_TAG))
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| MilvusError::Malformed {
                op: "DescribeCollection",
                problem: format!(
                    "collection {collection} was not written by twotower (no {INFO_PROPERTY} property; \
                     description {desc:?})"
                ),
            })?;
        if let Some(want) = expected_model {
            if want != info.model_fingerprint {
                return Err(Error::ModelMismatch {
                    dir: self.uri.to_string().into(),
                    version: v.to_string(),
                    found: info.model_fingerprint,
                    expected: want.to_string(),
                });
            }
        }
        let mut version = MilvusVersion {
            client: self.client.clone(),
            uri: self.uri.clone(),
            collection,
            version: v,
            info,
            rows: 0,
            consistency: self.consistency,
        };
        if load_state(&self.client, &version.collection)? != proto::load_state::LOADED {
            load(&self.client, &version.collection, BUILD_WAIT)?;
        }
        version.rows = version.count()?;
        Ok(version)
    }

    /// Writes `rows` as a new version and moves the alias to it; returns the version.
    pub fn build_version(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: HnswParams,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        self.write_version(rows, dim, params, model_fingerprint, None, progress)
    }

    fn write_version(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: HnswParams,
        model_fingerprint: &str,
        parent: Option<VersionId>,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        check_rows(rows, dim)?;
        if rows.is_empty() {
            return Err(Error::BadIds("no items to index".into()));
        }
        let mut rows = rows.clone();
        rows.vectors = normalize_rows(dim, &rows.vectors, Some(&rows.ids))?;
        let current = self.current()?;
        let next = self
            .versions()?
            .into_iter()
            .chain(current)
            .max()
            .map_or(VersionId(1), |v| VersionId(v.0 + 1));
        let collection = self.collection(next);
        let info = MilvusInfo {
            format_version: FORMAT_VERSION,
            model_fingerprint: model_fingerprint.to_string(),
            metric: METRIC.to_string(),
            dim,
            hnsw: params,
            parent,
        };
        self.create_collection(&collection, dim, &info)?;
        // From here on a failure drops the half-built collection (a kill leaves it to `gc`).
        let filled = self.fill(&collection, &rows, dim, params, progress);
        if let Err(e) = filled {
            let _ = self.drop_collection(&collection);
            return Err(e);
        }
        self.point_alias(&collection, current.is_some())?;
        Ok(next)
    }

    fn create_collection(&self, collection: &str, dim: usize, info: &MilvusInfo) -> Result<()> {
        let field = |name: &str, ty: i32, params: Vec<proto::KeyValuePair>| proto::FieldSchema {
            name: name.into(),
            data_type: ty,
            type_params: params,
            ..Default::default()
        };
        let mut id = field(
            ID_FIELD,
            data_type::VARCHAR,
            vec![kv("max_length", MAX_ID.to_string())],
        );
        id.is_primary_key = true;
        let mut genres = field(
            GENRES_FIELD,
            data_type::ARRAY,
            vec![
                kv("max_capacity", MAX_GENRES.to_string()),
                kv("max_length", MAX_GENRE.to_string()),
            ],
        );
        genres.element_type = data_type::VARCHAR;
        let json = serde_json::to_string(info).expect("plain struct serialises");
        let schema = proto::CollectionSchema {
            name: collection.to_string(),
            description: format!("{DESCRIPTION_TAG}{json}"),
            fields: vec![
                id,
                field(
                    VECTOR_FIELD,
                    data_type::FLOAT_VECTOR,
                    vec![kv("dim", dim.to_string())],
                ),
                field(
                    TITLE_FIELD,
                    data_type::VARCHAR,
                    vec![kv("max_length", MAX_TITLE.to_string())],
                ),
                genres,
            ],
            enable_dynamic_field: false,
        };
        let r: MResult<proto::Status> = self.client.call_admin(
            "CreateCollection",
            proto::CreateCollectionRequest {
                collection_name: collection.to_string(),
                schema: schema.encode_to_vec(),
                shards_num: 1,
                consistency_level: consistency::BOUNDED,
                properties: vec![kv(INFO_PROPERTY, json)],
            },
        );
        r.map_err(|e| match e {
            MilvusError::Server { op, code, reason } => MilvusError::Server {
                op,
                code,
                reason: format!(
                    "{reason} (creating {collection}; if it exists, another build is writing it or one \
                     crashed: `twotower index gc` drops it)"
                ),
            },
            e => e,
        })?;
        Ok(())
    }

    fn fill(
        &self,
        collection: &str,
        rows: &ItemRows,
        dim: usize,
        params: HnswParams,
        progress: &dyn Progress,
    ) -> Result<()> {
        write_rows(&self.client, "Insert", collection, rows, dim, progress)?;
        flush(&self.client, collection)?;
        progress.start("building the Milvus HNSW index", None);
        let r: proto::Status = self.client.call_admin(
            "CreateIndex",
            proto::CreateIndexRequest {
                collection_name: collection.to_string(),
                field_name: VECTOR_FIELD.into(),
                extra_params: vec![
                    kv("index_type", "HNSW"),
                    kv("metric_type", "IP"),
                    kv(
                        "params",
                        format!(
                            "{{\"M\": {}, \"efConstruction\": {}}}",
                            params.m, params.ef_construction
                        ),
                    ),
                ],
                index_name: VECTOR_FIELD.into(),
            },
        )?;
        drop(r);
        let client = &self.client;
        wait_until("the HNSW index build", BUILD_WAIT, || {
            let d: proto::DescribeIndexResponse = client.call_admin(
                "DescribeIndex",
                proto::DescribeIndexRequest {
                    collection_name: collection.to_string(),
                    field_name: VECTOR_FIELD.into(),
                    index_name: String::new(),
                },
            )?;
            let Some(ix) = d.index_descriptions.first() else {
                return Ok(false);
            };
            if ix.state == proto::index_state::FAILED {
                return Err(MilvusError::Server {
                    op: "DescribeIndex",
                    code: ix.state,
                    reason: format!("the index build failed: {}", ix.index_state_fail_reason),
                });
            }
            progress.set_message(&format!("{}/{} rows indexed", ix.indexed_rows, ix.total_rows));
            Ok(ix.state == proto::index_state::FINISHED && ix.pending_index_rows == 0)
        })?;
        progress.finish();
        progress.start("loading the collection", None);
        load(client, collection, BUILD_WAIT)?;
        progress.finish();
        let n = count(client, collection, consistency::STRONG)?;
        if n != rows.len() {
            return Err(MilvusError::Malformed {
                op: "Query",
                problem: format!(
                    "{collection} holds {n} rows after the build, {} were written",
                    rows.len()
                ),
            }
            .into());
        }
        Ok(())
    }

    fn point_alias(&self, collection: &str, exists: bool) -> Result<()> {
        let req = proto::AliasRequest {
            collection_name: collection.to_string(),
            alias: self.uri.name.clone(),
        };
        let r: proto::Status = if exists {
            self.client.call_admin("AlterAlias", req)?
        } else {
            self.client.call_admin("CreateAlias", req)?
        };
        drop(r);
        Ok(())
    }

    fn drop_collection(&self, collection: &str) -> Result<()> {
        let r: proto::Status = self.client.call_admin(
            "DropCollection",
            proto::DropCollectionRequest {
                collection_name: collection.to_string(),
            },
        )?;
        drop(r);
        Ok(())
    }

    /// Upserts new and changed items into the served collection and deletes `remove` (which wins over
    /// `rows`), by primary key; items whose stored vector, title and genres are the same are skipped.
    pub fn add_items(
        &self,
        rows: &ItemRows,
        dim: usize,
        remove: &[String],
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<AddReport> {
        check_rows(rows, dim)?;
        let cur = self.open_current(Some(model_fingerprint))?;
        let mut given = rows.clone();
        given.vectors = normalize_rows(dim, &rows.vectors, Some(&rows.ids))?;
        let mut report = AddReport::none(cur.version);
        let remove_refs: Vec<&str> = remove.iter().map(String::as_str).collect();
        let present = cur.fetch(&remove_refs, false)?;
        let present: HashSet<&str> = present.ids.iter().map(String::as_str).collect();
        let mut gone = Vec::new();
        for id in remove {
            if present.contains(id.as_str()) {
                gone.push(id.as_str());
            } else {
                report.not_found.push(id.clone());
            }
        }
        let removed: HashSet<&str> = remove_refs.iter().copied().collect();
        let wanted: Vec<&str> = given
            .ids
            .iter()
            .map(String::as_str)
            .filter(|i| !removed.contains(i))
            .collect();
        let stored = cur.fetch(&wanted, true)?;
        let by_id: HashMap<&str, usize> = stored
            .ids
            .iter()
            .enumerate()
            .map(|(r, i)| (i.as_str(), r))
            .collect();
        let mut changed = ItemRows::default();
        for r in 0..given.len() {
            let id = given.ids[r].as_str();
            if removed.contains(id) {
                continue;
            }
            match by_id.get(id) {
                Some(&s) => {
                    let same = same_bits(
                        &stored.vectors[s * dim..(s + 1) * dim],
                        &given.vectors[r * dim..(r + 1) * dim],
                    ) && stored.titles[s]
                        == fit_title(given.titles.get(r).map_or("", String::as_str))
                        && stored.genres[s] == given.genres.get(r).cloned().unwrap_or_default();
                    if same {
                        report.unchanged += 1;
                        continue;
                    }
                    report.replaced += 1;
                }
                None => report.added += 1,
            }
            changed.push_from(&given, r, dim);
        }
        if !changed.is_empty() {
            write_rows(&self.client, "Upsert", &cur.collection, &changed, dim, progress)?;
        }
        for chunk in gone.chunks(1000) {
            let r: proto::MutationResult = self.client.call_admin(
                "Delete",
                proto::DeleteRequest {
                    collection_name: cur.collection.clone(),
                    expr: id_in(chunk),
                },
            )?;
            drop(r);
            report.removed += chunk.len();
        }
        if !changed.is_empty() || report.removed > 0 {
            flush(&self.client, &cur.collection)?;
            report.committed = true;
        }
        Ok(report)
    }

    /// Rebuilds the served version's live set into a new version (see [`crate::IndexDir::rebuild_live`]):
    /// items of `rows` that are live get those vectors, other live items keep theirs when
    /// `model_fingerprint` built the served version (else they are an error), and items of `rows`
    /// that are not live are reported, not added.
    pub fn rebuild_live(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: Option<HnswParams>,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<RebuildReport> {
        check_rows(rows, dim)?;
        let cur = self.open_current(None)?;
        if cur.info.dim != dim {
            return Err(Error::Dimension {
                what: format!("rebuild of {}", self.uri),
                expected: cur.info.dim,
                got: dim,
            });
        }
        progress.start("reading the live set from Milvus", Some(cur.rows as u64));
        let live = cur.read_all(progress)?;
        progress.finish();
        let same_model = cur.info.model_fingerprint == model_fingerprint;
        let given: HashMap<&str, usize> = rows
            .ids
            .iter()
            .enumerate()
            .map(|(r, i)| (i.as_str(), r))
            .collect();
        let live_ids: HashSet<&str> = live.ids.iter().map(String::as_str).collect();
        let mut out = ItemRows::default();
        let (mut reembedded, mut kept, mut missing) = (0, 0, Vec::new());
        for r in 0..live.len() {
            match given.get(live.ids[r].as_str()) {
                Some(&g) => {
                    out.push_from(rows, g, dim);
                    reembedded += 1;
                }
                None if same_model => {
                    out.push_from(&live, r, dim);
                    kept += 1;
                }
                None => missing.push(live.ids[r].clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::MissingVectors {
                dir: self.uri.to_string().into(),
                version: cur.version.to_string(),
                models: "another model built it".into(),
                count: missing.len(),
                ids: crate::list_ids(&missing, 10),
            });
        }
        let not_live = rows
            .ids
            .iter()
            .filter(|i| !live_ids.contains(i.as_str()))
            .cloned()
            .collect();
        let params = params.unwrap_or(cur.info.hnsw);
        let version =
            self.write_version(&out, dim, params, model_fingerprint, Some(cur.version), progress)?;
        Ok(RebuildReport {
            version,
            parent: cur.version,
            rows: out.len(),
            reembedded,
            kept,
            not_live,
        })
    }

    /// Drops versions' collections except the newest `keep_last` up to the served one, and the served
    /// one itself; collections newer than the served one are debris of builds that died (or one
    /// running now: do not gc during a build).
    pub fn gc(&self, keep_last: usize) -> Result<GcReport> {
        let current = self.current()?;
        let versions = self.versions()?;
        let mut report = GcReport::default();
        let older: Vec<VersionId> = versions
            .iter()
            .copied()
            .filter(|v| current.is_some_and(|c| *v <= c))
            .collect();
        let keep_from = older.len().saturating_sub(keep_last.max(1));
        for v in versions {
            let is_debris = current.is_none_or(|c| v > c);
            let kept = Some(v) == current || (!is_debris && older[keep_from..].contains(&v));
            if kept {
                report.kept.push(v);
                continue;
            }
            self.drop_collection(&self.collection(v))?;
            if is_debris {
                report.debris.push(self.collection(v).into());
            } else {
                report.removed.push(v);
            }
        }
        Ok(report)
    }
}

/// Inserts (or upserts) rows in batches of at most ~4 MiB.
fn write_rows(
    client: &Client,
    op: &'static str,
    collection: &str,
    rows: &ItemRows,
    dim: usize,
    progress: &dyn Progress,
) -> Result<()> {
    let per_row = dim * 4 + 64 + rows.titles.iter().map(String::len).max().unwrap_or(0);
    let batch = ((4 << 20) / per_row).clamp(1, 10_000);
    progress.start(
        &format!("writing items to Milvus ({op})"),
        Some(rows.len() as u64),
    );
    for start in (0..rows.len()).step_by(batch) {
        let end = (start + batch).min(rows.len());
        let req = proto::InsertRequest {
            collection_name: collection.to_string(),
            fields_data: fields_of(rows, start..end, dim),
            num_rows: (end - start) as u32,
        };
        let r: proto::MutationResult = client.call_admin(op, req)?;
        let written = r.insert_cnt.max(r.upsert_cnt) as usize;
        if written != end - start {
            return Err(MilvusError::Malformed {
                op,
                problem: format!(
                    "{} rows sent to {collection}, {written} acknowledged",
                    end - start
                ),
            }
            .into());
        }
        progress.inc((end - start) as u64);
    }
    progress.finish();
    Ok(())
}

/// Seals and persists a collection's segments and waits until Milvus says they are flushed.
fn flush(client: &Client, collection: &str) -> Result<()> {
    let r: proto::FlushResponse = client.call_admin(
        "Flush",
        proto::FlushRequest {
            collection_names: vec![collection.to_string()],
        },
    )?;
    let segments = r
        .coll_seg_ids
        .get(collection)
        .map(|s| s.data.clone())
        .unwrap_or_default();
    let flush_ts = r.coll_flush_ts.get(collection).copied().unwrap_or(0);
    wait_until("the flush", BUILD_WAIT, || {
        let s: proto::GetFlushStateResponse = client.call_admin(
            "GetFlushState",
            proto::GetFlushStateRequest {
                segment_ids: segments.clone(),
                flush_ts,
                collection_name: collection.to_string(),
            },
        )?;
        Ok(s.flushed)
    })?;
    Ok(())
}
