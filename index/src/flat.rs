//! The search path: a flat, read-only copy of the hnsw_rs graph and a hand-written HNSW search.
//!
//! hnsw_rs stays the graph builder (inserts, dump, load), but its search pays for a hashed visited
//! set, an `Arc` clone per candidate and a lock per neighbour list, which made it 6–8× slower than
//! hnswlib at equal recall on the same graph shape. After every build, load or insert the graph is
//! copied into plain arrays (row-major unit vectors; layer 0 as fixed-stride `u32` neighbour lists;
//! the sparse upper layers as one CSR) and searched here with a generation-stamped visited array
//! and two heaps of packed `(distance, row)` keys, reusing per-thread scratch so a query allocates
//! only its result.
//!
//! Filters follow hnswlib: rows the filter rejects still guide the walk but are never results, and
//! the beam keeps going until it holds `ef` kept rows or runs out of candidates.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hnsw_rs::prelude::Hnsw;
use rayon::prelude::*;
use twotower_data::mapped::Slab;
use twotower_data::mem::huge_copy;

use crate::metric::{score_from_sq_l2, sq_l2_portable, UnitL2};
use crate::search::{better, Hit, RowFilter};

/// How many neighbours ahead of the one being scored have their vectors prefetched.
const PREFETCH_AHEAD: usize = 3;

/// `upper_slot` of a row that lives on layer 0 only.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The graph as flat arrays; rows are hnsw_rs data ids (our row numbers).
pub(crate) struct FlatGraph {
    pub(crate) dim: usize,
    pub(crate) len: usize,
    /// `len × dim` unit vectors, row-major (mapped from `vectors.f32` when opened from disk).
    pub(crate) rows: Slab<f32>,
    /// Layer 0: row `r` owns `links0[r*stride .. (r+1)*stride]` = `[count, id, id, ...]`.
    pub(crate) stride: usize,
    /// Mapped from `graph.links` when opened from disk, where its ids were not all checked on open:
    /// reads clamp a count to the stride and skip an id outside the graph.
    pub(crate) links0: Slab<u32>,
    /// Highest layer of each row.
    pub(crate) levels: Vec<u8>,
    /// Rows with level ≥ 1: index of their layer-1 list in `upper_offsets`; layer `l` is `slot + l - 1`.
    pub(crate) upper_slot: Vec<u32>,
    pub(crate) upper_offsets: Vec<u32>,
    pub(crate) upper_links: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) max_level: usize,
}

impl std::fmt::Debug for FlatGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatGraph")
            .field("len", &self.len)
            .field("max_level", &self.max_level)
            .field("entry", &self.entry)
            .finish()
    }
}

/// One point's contribution, gathered in parallel before the arrays are laid out.
struct Extracted {
    level: u8,
    layer0: Vec<u32>,
    upper: Vec<Vec<u32>>,
}

impl FlatGraph {
    /// An empty graph of dimension `dim`.
    pub(crate) fn empty(dim: usize) -> Self {
        FlatGraph {
            dim,
            len: 0,
            rows: Slab::default(),
            stride: 1,
            links0: Slab::default(),
            levels: Vec::new(),
            upper_slot: Vec::new(),
            upper_offsets: vec![0],
            upper_links: Vec::new(),
            entry: 0,
            max_level: 0,
        }
    }

    /// Copies an hnsw_rs graph holding data ids `0..len` of dimension `dim`. The error says what
    /// is inconsistent (a missing or repeated id, a neighbour outside the graph, a wrong dimension).
    pub(crate) fn from_hnsw(g: &Hnsw<'_, f32, UnitL2>, dim: usize, len: usize) -> Result<Self, String> {
        if len == 0 {
            return Ok(Self::empty(dim));
        }
        if len > u32::MAX as usize {
            return Err(format!("{len} points do not fit u32 row numbers"));
        }
        let pi = g.get_point_indexation();
        let points: Vec<_> = pi.into_iter().collect();
        if points.len() != len {
            return Err(format!("graph holds {} points, expected {len}", points.len()));
        }
        // Row -> position in `points`, checking every row appears exactly once.
        let mut order = vec![usize::MAX; len];
        for (i, p) in points.iter().enumerate() {
            let row = p.get_origin_id();
            let slot = order
                .get_mut(row)
                .ok_or_else(|| format!("data id {row} outside 0..{len}"))?;
            if *slot != usize::MAX {
                return Err(format!("data id {row} appears twice"));
            }
            *slot = i;
        }
        let mut rows = vec![0f32; len * dim];
        let extracted: Vec<Result<Extracted, String>> = rows
            .par_chunks_mut(dim)
            .zip(order.par_iter())
            .map(|(dst, &i)| {
                let p = &points[i];
                let v = p.get_v();
                if v.len() != dim {
                    return Err(format!(
                        "data id {} has dimension {}, expected {dim}",
                        p.get_origin_id(),
                        v.len()
                    ));
                }
                dst.copy_from_slice(v);
                let level = p.get_point_id().0;
                let nb = p.get_neighborhood_id();
                let ids = |layer: usize| -> Result<Vec<u32>, String> {
                    nb.get(layer)
                        .map(|l| l.as_slice())
                        .unwrap_or(&[])
                        .iter()
                        .map(|n| {
                            u32::try_from(n.d_id)
                                .ok()
                                .filter(|&r| (r as usize) < len)
                                .ok_or_else(|| format!("neighbour id {} outside 0..{len}", n.d_id))
                        })
                        .collect()
                };
                Ok(Extracted {
                    level,
                    layer0: ids(0)?,
                    upper: (1..=level as usize).map(ids).collect::<Result<_, _>>()?,
                })
            })
            .collect();
        let extracted: Vec<Extracted> = extracted.into_iter().collect::<Result<_, _>>()?;

        let stride = 1 + extracted.iter().map(|e| e.layer0.len()).max().unwrap_or(0);
        let mut links0 = vec![0u32; len * stride];
        links0
            .par_chunks_mut(stride)
            .zip(extracted.par_iter())
            .for_each(|(dst, e)| {
                dst[0] = e.layer0.len() as u32;
                dst[1..=e.layer0.len()].copy_from_slice(&e.layer0);
            });
        let mut levels = Vec::with_capacity(len);
        let mut upper_offsets = vec![0u32];
        let mut upper_links = Vec::new();
        let mut entry = 0u32;
        let mut max_level = 0usize;
        for (row, e) in extracted.iter().enumerate() {
            levels.push(e.level);
            if (e.level as usize) > max_level || row == 0 {
                max_level = e.level as usize;
                entry = row as u32;
            }
            for list in &e.upper {
                upper_links.extend_from_slice(list);
                let end = u32::try_from(upper_links.len())
                    .map_err(|_| "upper layers hold more than 2^32 links".to_string())?;
                upper_offsets.push(end);
            }
        }
        Ok(Self::assemble(
            dim,
            rows.into(),
            stride,
            links0.into(),
            levels,
            upper_offsets,
            upper_links,
            entry,
            max_level,
        )
        .on_huge_pages())
    }

    /// The graph from its parts: layer-0 lists of fixed `stride`, and the upper layers as one CSR
    /// (`upper_offsets`/`upper_links`) holding, row by row, the lists of layers `1..=levels[row]`.
    /// Each row's slot in that CSR follows from the levels. The caller vouches for consistency
    /// (`graph_file` checks a file before and after).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        dim: usize,
        rows: Slab<f32>,
        stride: usize,
        links0: Slab<u32>,
        levels: Vec<u8>,
        upper_offsets: Vec<u32>,
        upper_links: Vec<u32>,
        entry: u32,
        max_level: usize,
    ) -> Self {
        let mut upper_slot = vec![NO_SLOT; levels.len()];
        let mut slot = 0u32;
        for (row, &l) in levels.iter().enumerate() {
            if l > 0 {
                upper_slot[row] = slot;
                slot += u32::from(l);
            }
        }
        FlatGraph {
            dim,
            len: levels.len(),
            rows,
            stride,
            links0,
            levels,
            upper_slot,
            upper_offsets,
            upper_links,
            entry,
            max_level,
        }
    }

    /// Moves the two arrays a search reads at random (vectors, layer-0 lists) onto huge pages where
    /// the kernel allows (see [`twotower_data::mem`]): at 1 M rows that is 384 MiB of random reads,
    /// and on 4 KiB pages nearly every visited node also cost a TLB miss.
    /// Mapped arrays stay where they are: copying them is what mapping avoids.
    pub(crate) fn on_huge_pages(mut self) -> Self {
        if !self.rows.is_mapped() {
            self.rows = huge_copy(&self.rows).into();
        }
        if !self.links0.is_mapped() {
            self.links0 = huge_copy(&self.links0).into();
        }
        self
    }

    /// The normalised vector of `row`.
    #[inline(always)]
    pub(crate) fn row(&self, row: u32) -> &[f32] {
        let s = row as usize * self.dim;
        &self.rows[s..s + self.dim]
    }

    #[inline(always)]
    fn neighbours0(&self, row: u32) -> &[u32] {
        let s = row as usize * self.stride;
        // A count beyond the stride only comes from a damaged mapped file: read what fits.
        let n = (self.links0[s] as usize).min(self.stride - 1);
        &self.links0[s + 1..s + 1 + n]
    }

    #[inline(always)]
    pub(crate) fn neighbours_upper(&self, row: u32, level: usize) -> &[u32] {
        let r = row as usize;
        if level == 0 || level > self.levels[r] as usize {
            return &[];
        }
        let slot = self.upper_slot[r] as usize + level - 1;
        &self.upper_links[self.upper_offsets[slot] as usize..self.upper_offsets[slot + 1] as usize]
    }

    /// The `k` nearest kept rows to the unit vector `q`, exploring `ef` (≥ `k`) candidates on layer 0.
    pub(crate) fn search(&self, q: &[f32], k: usize, ef: usize, filter: Option<RowFilter<'_>>) -> Vec<Hit> {
        if k == 0 || self.len == 0 || q.len() != self.dim {
            return Vec::new();
        }
        let ef = ef.max(k);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    return unsafe { self.search_avx2(q, k, ef, filter, &mut s) };
                }
            }
            self.search_impl::<Portable>(q, k, ef, filter, &mut s)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
        s: &mut Scratch,
    ) -> Vec<Hit> {
        // `Portable::dist` is `inline(always)`, so here it is compiled with AVX2/FMA.
        self.search_impl::<Portable>(q, k, ef, filter, s)
    }

    #[inline(always)]
    fn search_impl<D: Dist>(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
        s: &mut Scratch,
    ) -> Vec<Hit> {
        let (cur, cur_d) = greedy_descent(
            self.entry,
            1..=self.max_level,
            |r| D::dist(q, self.row(r)),
            |r, level| self.neighbours_upper(r, level).iter().copied(),
        );

        // Beam search on layer 0.
        s.beam.begin(self.len);
        let Scratch {
            beam:
                Beam {
                    visited,
                    epoch,
                    candidates,
                    top,
                },
            fresh,
        } = s;
        let epoch = *epoch;
        let kept = |r: u32| filter.is_none_or(|f| f(r));
        visited[cur as usize] = epoch;
        let key = pack(cur_d, cur);
        let mut lower = f32::INFINITY;
        if kept(cur) {
            top.push(key);
            lower = cur_d;
        }
        candidates.push(Reverse(key));
        while let Some(Reverse(c)) = candidates.pop() {
            let (cd, row) = unpack(c);
            if cd > lower && (top.len() >= ef || filter.is_none()) {
                break;
            }
            // Two passes, as in the fastest HNSW searches: first mark the unvisited neighbours, so
            // memory is only asked for rows that will be scored, then score them while the next
            // few rows' vectors are already on their way (at 1 M rows every visit is a cache miss;
            // overlapping them is what bounds the query rate). The visit order is unchanged.
            let list = self.neighbours0(row);
            fresh.clear();
            for &nb in list {
                // An id outside the graph only comes from a damaged mapped file: skip it.
                if nb as usize >= self.len {
                    continue;
                }
                let seen = &mut visited[nb as usize];
                if *seen != epoch {
                    *seen = epoch;
                    fresh.push(nb);
                }
            }
            for &nb in fresh.iter().take(PREFETCH_AHEAD) {
                self.prefetch(nb);
            }
            if let Some(Reverse(next)) = candidates.peek() {
                self.prefetch_links0(unpack(*next).1);
            }
            for (j, &nb) in fresh.iter().enumerate() {
                if let Some(&ahead) = fresh.get(j + PREFETCH_AHEAD) {
                    self.prefetch(ahead);
                }
                let d = D::dist(q, self.row(nb));
                if top.len() < ef || d < lower {
                    let key = pack(d, nb);
                    candidates.push(Reverse(key));
                    if kept(nb) {
                        top.push(key);
                        if top.len() > ef {
                            top.pop();
                        }
                    }
                    if let Some(&w) = top.peek() {
                        lower = unpack(w).0;
                    }
                }
            }
        }
        let mut keys: Vec<u64> = top.drain().collect();
        keys.sort_unstable();
        keys.truncate(k);
        let mut hits: Vec<Hit> = keys
            .into_iter()
            .map(|key| {
                let (d, row) = unpack(key);
                Hit {
                    row,
                    score: score_from_sq_l2(d),
                }
            })
            .collect();
        // Distinct distances can round to one score: order as every other index does.
        hits.sort_by(better);
        hits
    }

    /// Asks the cache for `row`'s layer-0 neighbour list (the next node the beam will expand).
    #[inline(always)]
    fn prefetch_links0(&self, row: u32) {
        prefetch_row(&self.links0, row, self.stride);
    }

    /// Asks the cache for `row`'s vector while the current distance is computed.
    #[inline(always)]
    fn prefetch(&self, row: u32) {
        prefetch_row(&self.rows, row, self.dim);
    }
}

/// Asks the cache for row `row` of the row-major `data` (rows of `width` elements); nothing when it
/// is out of range.
#[inline(always)]
pub(crate) fn prefetch_row<T>(data: &[T], row: u32, width: usize) {
    let start = row as usize * width;
    if let Some(v) = data.get(start..start + width) {
        twotower_data::mem::prefetch(v.as_ptr(), std::mem::size_of_val(v));
    }
}

/// hnswlib's greedy descent through the upper layers: from `entry`, on each layer of `layers` from
/// the highest down, move to the closest neighbour while one is closer (`dist` to the query).
/// Returns the row reached and its distance. The graph search, the builder's insertion and its
/// repair pass all descend this way.
#[inline(always)]
pub(crate) fn greedy_descent<I: IntoIterator<Item = u32>>(
    entry: u32,
    layers: std::ops::RangeInclusive<usize>,
    dist: impl Fn(u32) -> f32,
    neighbours: impl Fn(u32, usize) -> I,
) -> (u32, f32) {
    let mut cur = entry;
    let mut cur_d = dist(cur);
    for layer in layers.rev() {
        loop {
            let mut changed = false;
            for nb in neighbours(cur, layer) {
                let d = dist(nb);
                if d < cur_d {
                    cur_d = d;
                    cur = nb;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    (cur, cur_d)
}

/// Distances are non-negative floats, whose bit patterns order like the values: `(d, row)` packs
/// into one `u64` that compares by distance, then row. NaN (impossible for finite unit vectors)
/// becomes `f32::MAX`, as in [`UnitL2`].
#[inline(always)]
pub(crate) fn pack(d: f32, row: u32) -> u64 {
    let d = if d >= 0.0 {
        d
    } else if d.is_nan() {
        f32::MAX
    } else {
        0.0
    };
    (u64::from(d.to_bits()) << 32) | u64::from(row)
}

#[inline(always)]
pub(crate) fn unpack(key: u64) -> (f32, u32) {
    (f32::from_bits((key >> 32) as u32), key as u32)
}

/// The distance kernel, a type parameter so it inlines into the AVX2-compiled search.
trait Dist {
    fn dist(a: &[f32], b: &[f32]) -> f32;
}

struct Portable;

impl Dist for Portable {
    #[inline(always)]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        sq_l2_portable(a, b)
    }
}

/// Per-thread search state, reused across queries (and across graphs: stamps only grow).
#[derive(Default)]
struct Scratch {
    beam: Beam,
    /// The unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

/// What every beam search (the graph search's and the builder's) keeps between searches: a
/// generation-stamped visited array and the two heaps of packed `(distance, row)` keys.
#[derive(Default)]
pub(crate) struct Beam {
    pub(crate) visited: Vec<u32>,
    pub(crate) epoch: u32,
    /// Closest first.
    pub(crate) candidates: BinaryHeap<Reverse<u64>>,
    /// The best found so far, farthest on top.
    pub(crate) top: BinaryHeap<u64>,
}

impl Beam {
    /// Starts a new search over `n` rows: a row is visited when its stamp equals `epoch`, so
    /// clearing is one increment; on wrap-around the array is zeroed once.
    pub(crate) fn begin(&mut self, n: usize) {
        if self.visited.len() < n {
            // Read at random once per scored neighbour: on huge pages too (4 MB at 1 M rows).
            self.visited = twotower_data::mem::huge_vec(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.visited.fill(0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.top.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn packed_keys_order_like_distance_then_row(
            a in 0f32..4.0, b in 0f32..4.0, ra in any::<u32>(), rb in any::<u32>()
        ) {
            let (ka, kb) = (pack(a, ra), pack(b, rb));
            let want = a.total_cmp(&b).then(ra.cmp(&rb));
            prop_assert_eq!(ka.cmp(&kb), want);
            prop_assert_eq!(unpack(ka), (a, ra));
        }
    }

    #[test]
    fn nan_distance_sorts_last() {
        assert!(pack(f32::NAN, 0) > pack(3.9, u32::MAX));
        assert_eq!(unpack(pack(f32::NAN, 7)), (f32::MAX, 7));
    }

    #[test]
    fn visited_stamps_survive_epoch_wrap() {
        let mut s = Scratch::default();
        s.beam.begin(4);
        s.beam.visited[2] = s.beam.epoch;
        s.beam.epoch = u32::MAX;
        s.beam.begin(4);
        assert_eq!(s.beam.epoch, 1);
        assert!(s.beam.visited.iter().all(|&v| v == 0));
    }
}
