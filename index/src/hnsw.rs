//! The approximate index: an hnsw_rs graph over unit vectors with the squared-L2 metric.
//!
//! hnsw_rs's loader hands back a graph that borrows from the loader (`Hnsw<'b>` with `HnswIo: 'b`);
//! [`LoadedGraph`] owns both in one value (`self_cell`), so nothing is leaked and no lifetime is
//! forged. Callers reach the graph through [`Graph::with`], which works the same for a graph built
//! in this process and one loaded from disk.
//!
//! Two builders make the graph ([`GraphBuilder`]): the native one (`native.rs`, hnswlib's algorithm,
//! the default) and hnsw_rs (kept as the reference and for versions written before the native
//! builder). Searches always run on a [`FlatGraph`]: the native builder produces one directly; an
//! hnsw_rs graph is copied into one after each build, insert or load (see `flat.rs` for why).
//! [`HnswIndex::search_reference_with_ef`] keeps hnsw_rs's own search reachable on hnsw_rs graphs,
//! as the reference the flat search is tested and benchmarked against.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{FilterT, Hnsw};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use twotower_data::progress::Progress;

use crate::error::{Error, Result};
use crate::flat::FlatGraph;
use crate::{graph_file, native};

use crate::metric::{normalize_queries, normalize_query, normalize_rows, score_from_sq_l2, UnitL2};
use crate::search::{better, Hit, RowFilter, VectorIndex};

/// hnsw_rs's maximum number of layers.
const MAX_LAYERS: usize = 16;
/// Rows per `parallel_insert` call: large enough to keep both cores busy, small enough for progress.
const INSERT_CHUNK: usize = 8192;

/// Graph parameters. Stored in each version's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (layer 0 keeps 2·m). More: better recall, slower build, more memory.
    pub m: usize,
    /// Candidate list size while inserting. More: better graph, slower build.
    pub ef_construction: usize,
    /// Default candidate list size while searching (raised to `k` when smaller).
    pub ef_search: usize,
}

/// Defaults measured on clustered unit vectors (100k × 64, 1000 centres; 30k × 64): recall@10 with
/// ef_construction 100 equals that with 200 (0.9963 / 0.9992 / 1.0 at ef 24 / 32 / 48) at half
/// the build time; ef_search 48 is the smallest ef with recall 1.0 there, a margin for real
/// embeddings. `twotower index check` shows the curve for a real index.
impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 48,
        }
    }
}

impl HnswParams {
    /// Rejects parameters hnsw_rs would exit the process on (m > 256) or that make no graph.
    pub fn validate(&self) -> Result<()> {
        if !(2..=128).contains(&self.m) {
            return Err(Error::InvalidParam {
                name: "m",
                problem: format!("{} is outside 2..=128", self.m),
            });
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::InvalidParam {
                name: "ef",
                problem: "ef_construction and ef_search must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Which code builds a graph and inserts into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphBuilder {
    /// The hand-written parallel builder (hnswlib's algorithm). Versions store `graph.links`.
    #[default]
    Native,
    /// hnsw_rs's `parallel_insert`. Versions store hnsw_rs's dump (the format-1 layout).
    HnswRs,
}

/// The mutable graph behind the flat copy.
enum Backend {
    /// The flat graph is the graph (inserts copy it into a builder and back).
    Native,
    /// An hnsw_rs graph, copied into the flat graph after every change.
    HnswRs(Graph),
}

type GraphOf<'a> = Hnsw<'a, f32, UnitL2>;

self_cell::self_cell!(
    /// A graph loaded from disk together with the hnsw_rs loader it borrows from.
    struct LoadedGraph {
        owner: HnswIo,
        #[not_covariant]
        dependent: GraphOf,
    }
);

/// The graph, however it came to be.
enum Graph {
    Built(GraphOf<'static>),
    Loaded(LoadedGraph),
}

impl Graph {
    fn with<R>(&self, f: impl for<'a> FnOnce(&GraphOf<'a>) -> R) -> R {
        match self {
            Graph::Built(g) => f(g),
            Graph::Loaded(l) => l.with_dependent(|_, g| f(g)),
        }
    }
}

/// Adapts a row predicate to hnsw_rs's filter trait (its data ids are our row numbers).
struct RowPredicate<'a>(RowFilter<'a>);

impl FilterT for RowPredicate<'_> {
    fn hnsw_filter(&self, id: &usize) -> bool {
        u32::try_from(*id).is_ok_and(|r| (self.0)(r))
    }
}

/// An HNSW graph over unit vectors; row `i` is the `i`-th vector inserted.
pub struct HnswIndex {
    dim: usize,
    len: usize,
    params: HnswParams,
    backend: Backend,
    /// What searches run on: the native graph itself, or the copy of the hnsw_rs graph refreshed
    /// after every change to it.
    flat: FlatGraph,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("params", &self.params)
            .field("builder", &self.builder())
            .finish()
    }
}

impl HnswIndex {
    /// Builds a graph over row-major `vectors` (n × `dim`) with the native builder on the global
    /// rayon pool; rows are normalised first.
    pub fn build(dim: usize, vectors: &[f32], params: HnswParams, progress: &dyn Progress) -> Result<Self> {
        Self::build_with(dim, vectors, params, GraphBuilder::Native, progress)
    }

    /// [`Self::build`] with hnsw_rs's builder (the reference; slower).
    pub fn build_with_hnsw_rs(
        dim: usize,
        vectors: &[f32],
        params: HnswParams,
        progress: &dyn Progress,
    ) -> Result<Self> {
        Self::build_with(dim, vectors, params, GraphBuilder::HnswRs, progress)
    }

    /// [`Self::build`] with the given builder.
    pub fn build_with(
        dim: usize,
        vectors: &[f32],
        params: HnswParams,
        builder: GraphBuilder,
        progress: &dyn Progress,
    ) -> Result<Self> {
        let rows = normalize_rows(dim, vectors, None)?;
        Self::build_normalized(dim, &rows, params, builder, progress)
    }

    /// Builds from rows that are already unit vectors.
    pub(crate) fn build_normalized(
        dim: usize,
        rows: &[f32],
        params: HnswParams,
        builder: GraphBuilder,
        progress: &dyn Progress,
    ) -> Result<Self> {
        params.validate()?;
        if dim == 0 {
            return Err(Error::InvalidParam {
                name: "dim",
                problem: "must be at least 1".into(),
            });
        }
        let n = rows.len() / dim;
        let backend = match builder {
            GraphBuilder::Native => Backend::Native,
            GraphBuilder::HnswRs => Backend::HnswRs(Graph::Built(GraphOf::new(
                params.m,
                n.max(1),
                MAX_LAYERS,
                params.ef_construction,
                UnitL2,
            ))),
        };
        if let Backend::Native = backend {
            if n > u32::MAX as usize {
                return Err(Error::InvalidParam {
                    name: "rows",
                    problem: "an index holds at most 2^32 - 1 rows".into(),
                });
            }
            progress.start("building HNSW graph", Some(n as u64));
            let (flat, _) = native::build_with_stats(
                dim,
                rows.to_vec(),
                params.m,
                params.ef_construction,
                params.ef_search,
                progress,
            );
            progress.finish();
            return Ok(HnswIndex {
                dim,
                len: n,
                params,
                backend,
                flat,
            });
        }
        let mut index = HnswIndex {
            dim,
            len: 0,
            params,
            backend,
            flat: FlatGraph::empty(dim),
        };
        index.insert_normalized(rows, progress)?;
        Ok(index)
    }

    /// Which builder made this graph (and inserts into it).
    pub fn builder(&self) -> GraphBuilder {
        match self.backend {
            Backend::Native => GraphBuilder::Native,
            Backend::HnswRs(_) => GraphBuilder::HnswRs,
        }
    }

    /// Inserts more rows (normalised first) into the graph; returns the first new row number.
    pub fn insert(&mut self, vectors: &[f32], progress: &dyn Progress) -> Result<u32> {
        let rows = normalize_rows(self.dim, vectors, None)?;
        self.insert_normalized(&rows, progress)
    }

    pub(crate) fn insert_normalized(&mut self, rows: &[f32], progress: &dyn Progress) -> Result<u32> {
        let first = self.len;
        let n = rows.len() / self.dim;
        if first + n > u32::MAX as usize {
            return Err(Error::InvalidParam {
                name: "rows",
                problem: "an index holds at most 2^32 - 1 rows".into(),
            });
        }
        progress.start("inserting into HNSW graph", Some(n as u64));
        let dim = self.dim;
        match &self.backend {
            Backend::Native => {
                let flat = std::mem::replace(&mut self.flat, FlatGraph::empty(dim));
                self.flat = native::insert_with_stats(
                    flat,
                    rows,
                    self.params.m,
                    self.params.ef_construction,
                    self.params.ef_search,
                    progress,
                )
                .0;
                self.len += n;
            }
            Backend::HnswRs(graph) => {
                for (c, chunk) in rows.chunks(INSERT_CHUNK * dim).enumerate() {
                    let base = first + c * INSERT_CHUNK;
                    let batch: Vec<(&[f32], usize)> = chunk
                        .chunks_exact(dim)
                        .enumerate()
                        .map(|(i, v)| (v, base + i))
                        .collect();
                    graph.with(|g| g.parallel_insert_slice(&batch));
                    progress.inc(batch.len() as u64);
                }
                self.len += n;
                progress.set_message("copying the graph for search");
                self.flat = flatten(graph, self.dim, self.len, Path::new("<in-memory graph>"))?;
            }
        }
        progress.finish();
        Ok(first as u32)
    }

    /// The graph parameters (`ef_search` is the default candidate list size of [`VectorIndex::search`]).
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Changes the default search candidate list size.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    /// The same search through hnsw_rs's own `search_filter` (slower; with a filter it returns
    /// the kept rows among the `k` best, so possibly fewer than `k`). For tests and benchmarks.
    /// Only a graph built by hnsw_rs ([`GraphBuilder::HnswRs`], or loaded from a format-1 version)
    /// has one; a native graph gives [`Error::InvalidParam`].
    pub fn search_reference_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        let Backend::HnswRs(graph) = &self.backend else {
            return Err(Error::InvalidParam {
                name: "builder",
                problem: "hnsw_rs's reference search needs a graph built by hnsw_rs; this one is native"
                    .into(),
            });
        };
        let q = normalize_query(self.dim, query, 0)?;
        Ok(Self::search_reference_normalized(
            graph, self.len, &q, k, ef, filter,
        ))
    }

    fn search_normalized(&self, q: &[f32], k: usize, ef: usize, filter: Option<RowFilter<'_>>) -> Vec<Hit> {
        self.flat.search(q, k, ef, filter)
    }

    fn search_reference_normalized(
        graph: &Graph,
        len: usize,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Vec<Hit> {
        if k == 0 || len == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let pred = filter.map(RowPredicate);
        let found = graph.with(|g| g.search_filter(q, k, ef, pred.as_ref().map(|p| p as &dyn FilterT)));
        let mut hits: Vec<Hit> = found
            .into_iter()
            .filter_map(|n| {
                let row = u32::try_from(n.d_id).ok()?;
                Some(Hit {
                    row,
                    score: score_from_sq_l2(n.distance),
                })
            })
            .collect();
        hits.sort_by(better);
        hits.truncate(k);
        hits
    }

    /// The search graph (for the native graph file).
    pub(crate) fn flat(&self) -> &FlatGraph {
        &self.flat
    }

    /// Maps a native graph file (see `graph_file.rs`) over `rows` (n × `dim` unit vectors),
    /// checking as much of it as `check` says; a damaged file is an error or skipped links, never a
    /// panic.
    pub(crate) fn load_native(
        path: &Path,
        dim: usize,
        rows: twotower_data::mapped::Slab<f32>,
        params: HnswParams,
        check: graph_file::Check,
    ) -> Result<Self> {
        let flat = graph_file::read(path, dim, rows, check)?;
        Ok(HnswIndex {
            dim,
            len: flat.len,
            params,
            backend: Backend::Native,
            flat,
        })
    }

    /// Writes `<basename>.hnsw.graph` and `<basename>.hnsw.data` into `dir` (hnsw_rs graphs only).
    pub(crate) fn dump(&self, dir: &Path, basename: &str) -> Result<()> {
        let Backend::HnswRs(graph) = &self.backend else {
            return Err(Error::Graph {
                path: dir.to_path_buf(),
                problem: "a native graph has no hnsw_rs dump".into(),
            });
        };
        let res = catch_unwind(AssertUnwindSafe(|| graph.with(|g| g.file_dump(dir, basename))));
        match res {
            Ok(Ok(name)) if name == basename => Ok(()),
            Ok(Ok(name)) => Err(Error::Graph {
                path: dir.to_path_buf(),
                problem: format!("hnsw_rs dumped under basename {name:?} instead of {basename:?}"),
            }),
            Ok(Err(e)) => Err(Error::Graph {
                path: dir.to_path_buf(),
                problem: format!("{e:#}"),
            }),
            Err(_) => Err(Error::Graph {
                path: dir.to_path_buf(),
                problem: "hnsw_rs panicked while dumping".into(),
            }),
        }
    }

    /// Loads a dump written by [`Self::dump`]. The caller must have verified the files' checksums
    /// against the manifest first: hnsw_rs's loader asserts (panics) on inconsistent input. A panic
    /// that still happens is caught and reported as an error.
    pub(crate) fn load(
        dir: &Path,
        basename: &str,
        dim: usize,
        expected_len: usize,
        params: HnswParams,
    ) -> Result<Self> {
        let graph_err = |problem: String| Error::Graph {
            path: dir.join(format!("{basename}.hnsw.graph")),
            problem,
        };
        let res = catch_unwind(AssertUnwindSafe(|| {
            LoadedGraph::try_new(HnswIo::new(dir, basename), |io| {
                io.load_hnsw_with_dist::<f32, UnitL2>(UnitL2)
            })
        }));
        let mut loaded = match res {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => return Err(graph_err(format!("{e:#}"))),
            Err(_) => return Err(graph_err("hnsw_rs panicked while loading".into())),
        };
        // The loader turns candidate extension on; inserts after a reload should behave like the build.
        loaded.with_dependent_mut(|_, g| g.set_extend_candidates(false));
        let (n, d) =
            loaded.with_dependent(|_, g| (g.get_nb_point(), g.get_point_indexation().get_data_dimension()));
        if n != expected_len || (n > 0 && d != dim) {
            return Err(graph_err(format!(
                "graph holds {n} points of dimension {d}, manifest says {expected_len} of dimension {dim}"
            )));
        }
        let graph = Graph::Loaded(loaded);
        let flat = flatten(&graph, dim, n, &dir.join(format!("{basename}.hnsw.graph")))?;
        Ok(HnswIndex {
            dim,
            len: n,
            params,
            backend: Backend::HnswRs(graph),
            flat,
        })
    }
}

/// Copies the graph into its search layout; `path` names it in the error.
fn flatten(graph: &Graph, dim: usize, len: usize, path: &Path) -> Result<FlatGraph> {
    graph
        .with(|g| FlatGraph::from_hnsw(g, dim, len))
        .map_err(|problem| Error::Graph {
            path: PathBuf::from(path),
            problem,
        })
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.len
    }

    fn default_ef(&self) -> usize {
        self.params.ef_search
    }

    /// One query per rayon task.
    fn search_batch_with_ef(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        let qs = normalize_queries(self.dim, queries)?;
        Ok(qs
            .par_chunks_exact(self.dim)
            .map(|q| self.search_normalized(q, k, ef, filter))
            .collect())
    }

    fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        let q = normalize_query(self.dim, query, 0)?;
        Ok(self.search_normalized(&q, k, ef, filter))
    }
}
