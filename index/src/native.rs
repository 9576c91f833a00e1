//! The native HNSW builder: hnswlib's insertion algorithm over flat atomic neighbour lists.
//!
//! hnsw_rs's insertion pays for a hashed visited set, an `Arc` clone per candidate and an `RwLock`
//! per neighbour list; this builder follows hnswlib instead:
//! - a node's top layer is drawn as `floor(-ln(u) / ln(M))`, deterministically per row from a fixed
//!   seed ([`level_of`]), so every level (and the layout of the upper layers) is known before the
//!   parallel insertion starts and all storage is allocated once;
//! - greedy descent from the entry point through the layers above the node's level, then a beam
//!   search with `ef_construction` on each layer from the node's level down to 0;
//! - the new node's neighbours are chosen by hnswlib's heuristic (`getNeighborsByHeuristic2`, `M` of
//!   them), and each neighbour links back, pruning its list by the same heuristic when it would exceed
//!   `M` (upper layers) or `2·M` (layer 0);
//! - neighbour lists are `AtomicU32` arrays `[count, id, id, ...]` of fixed stride: writers hold the
//!   node's mutex, readers (other threads' searches) read without a lock. A reader may see a list
//!   mid-update (a mix of old and new ids); every id ever stored is a valid row, so the worst case is
//!   a slightly different walk, never an invalid access. The entry point and top layer change under
//!   one global mutex, held through the insertion of a node that raises the top layer (as hnswlib).
//!
//! After insertion, rows unreachable from the entry point are relinked (`link_unreachable`), then
//! the repair pass (`repair.rs`) makes every row found by its own search at the default `ef`. All
//! three search with one beam search (`beam.rs`).
//!
//! The result is copied into a [`FlatGraph`] (the same layout the search uses); inserting into a
//! loaded graph copies it back into a builder, inserts, and copies out again.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use twotower_data::mem::{huge_copy, huge_vec_from};
use twotower_data::progress::Progress;

use crate::flat::{greedy_descent, pack, prefetch_row, unpack, Beam, FlatGraph, NO_SLOT};
use crate::metric::sq_l2_portable;

mod beam;
mod repair;
pub(crate) use repair::{RepairStats, SELF_K};

/// Seed of the level draw: a build is reproducible in its levels.
const LEVEL_SEED: u64 = 0x7477_6f74_6f77_6572; // "twotower"
/// Highest layer a node may get (levels are stored as `u8`; 16 layers as in hnsw_rs).
pub(crate) const MAX_LEVEL: u8 = 15;
/// Progress is reported every this many inserted rows.
const PROGRESS_EVERY: usize = 1024;
/// Rows with at most this many incoming layer-0 links (at most m / 4 below m = 16) get more after
/// the build (`link_unreachable`).
const WEAK_INDEGREE: u32 = 4;

/// The top layer of every row in `first..first + count` for links-per-layer `m`: hnswlib's
/// `floor(-ln(u) · 1/ln(m))` with `u` uniform in (0, 1], row `r` drawing the `r`-th `u64` of one
/// ChaCha8 stream, so the level of a row does not depend on how rows were batched.
pub(crate) fn levels_for(first: usize, count: usize, m: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(LEVEL_SEED);
    rng.set_word_pos(first as u128 * 2);
    let mult = 1.0 / (m.max(2) as f64).ln();
    (0..count).map(|_| level_of(rng.next_u64(), mult)).collect()
}

fn level_of(x: u64, mult: f64) -> u8 {
    // 53 random bits -> u in (0, 1].
    let u = ((x >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
    let l = (-u.ln() * mult).floor();
    if l >= f64::from(MAX_LEVEL) {
        MAX_LEVEL
    } else {
        l as u8
    }
}

/// The graph under construction.
pub(crate) struct Builder {
    dim: usize,
    /// `n × dim` unit vectors (all rows, inserted or not yet).
    rows: Vec<f32>,
    levels: Vec<u8>,
    /// Links per node on upper layers (`M`); the new node keeps at most `m` on every layer.
    m: usize,
    /// Capacity of a layer-0 list (`2·M`, or more for a loaded graph that already has more).
    cap0: usize,
    /// Capacity of an upper-layer list.
    cap_up: usize,
    ef_construction: usize,
    /// Layer 0: `[count, ids; cap0]` per row.
    links0: Vec<AtomicU32>,
    /// Rows with level ≥ 1: start of their layer-1 block in `upper`; layer `l` at `+ (l-1)·(1+cap_up)`.
    upper_start: Vec<u32>,
    upper: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
    /// (entry point, top layer), `None` while the graph is empty.
    entry: Mutex<Option<(u32, u8)>>,
}

/// Per-thread construction search state.
#[derive(Default)]
struct Scratch {
    beam: Beam,
    /// The beam's result, ascending.
    found: Vec<u64>,
    /// Neighbour-list copy and selection buffers.
    list: Vec<u32>,
    selected: Vec<u64>,
    prune: Vec<u64>,
    pruned: Vec<u64>,
    /// The rows whose lists the last recording search read (`beam`'s `RECORD`).
    walk: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `n` zeroed atomics, on huge pages where the kernel allows (the lists are read at random).
fn atomics(n: usize) -> Vec<AtomicU32> {
    huge_vec_from(n, (0..n).map(|_| AtomicU32::new(0)))
}

impl Builder {
    /// An empty graph over `rows` (already unit vectors) with the given levels.
    fn new(dim: usize, rows: Vec<f32>, levels: Vec<u8>, m: usize, ef_construction: usize) -> Self {
        let n = levels.len();
        let cap0 = 2 * m;
        let cap_up = m;
        let (upper_start, upper_len) = upper_layout(&levels, cap_up);
        Builder {
            dim,
            rows: huge_copy(&rows),
            levels,
            m,
            cap0,
            cap_up,
            ef_construction: ef_construction.max(1),
            links0: atomics(n * (1 + cap0)),
            upper_start,
            upper: atomics(upper_len),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new(None),
        }
    }

    /// A builder holding `flat`'s graph, with room for `extra_rows` (unit vectors) more.
    #[allow(clippy::needless_range_loop)]
    fn from_flat(flat: FlatGraph, extra_rows: &[f32], m: usize, ef_construction: usize) -> Self {
        let dim = flat.dim;
        let old = flat.len;
        let extra = extra_rows.len() / dim;
        let mut levels = flat.levels.clone();
        levels.extend(levels_for(old, extra, m));
        let n = levels.len();
        let cap0 = (2 * m).max(flat.stride.saturating_sub(1));
        let longest_upper = flat
            .upper_offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0);
        let cap_up = m.max(longest_upper);
        let (upper_start, upper_len) = upper_layout(&levels, cap_up);
        let links0 = atomics(n * (1 + cap0));
        let upper = atomics(upper_len);
        // Copy the existing lists.
        links0
            .par_chunks(1 + cap0)
            .zip(flat.links0.par_chunks(flat.stride.max(1)))
            .for_each(|(dst, src)| {
                let c = src[0] as usize;
                dst[0].store(c as u32, Relaxed);
                for (d, s) in dst[1..].iter().zip(&src[1..=c]) {
                    d.store(*s, Relaxed);
                }
            });
        for r in 0..old {
            let slot = flat.upper_slot[r];
            if slot == NO_SLOT {
                continue;
            }
            for l in 1..=flat.levels[r] as usize {
                let s = slot as usize + l - 1;
                let src =
                    &flat.upper_links[flat.upper_offsets[s] as usize..flat.upper_offsets[s + 1] as usize];
                let start = upper_start[r] as usize + (l - 1) * (1 + cap_up);
                let dst = &upper[start..start + 1 + cap_up];
                dst[0].store(src.len() as u32, Relaxed);
                for (d, s) in dst[1..].iter().zip(src) {
                    d.store(*s, Relaxed);
                }
            }
        }
        let entry = (old > 0).then_some((flat.entry, flat.max_level as u8));
        let rows = huge_vec_from(
            flat.rows.len() + extra_rows.len(),
            flat.rows.iter().chain(extra_rows).copied(),
        );
        Builder {
            dim,
            rows,
            levels,
            m,
            cap0,
            cap_up,
            ef_construction: ef_construction.max(1),
            links0,
            upper_start,
            upper,
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new(entry),
        }
    }

    /// Copies the finished graph into the search layout.
    #[allow(clippy::needless_range_loop)]
    fn into_flat(self) -> FlatGraph {
        let n = self.levels.len();
        let (entry, max_level) = self
            .entry
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or((0, 0));
        if n == 0 {
            return FlatGraph::empty(self.dim);
        }
        let stride = 1 + self.cap0;
        let links0 = huge_vec_from(
            self.links0.len(),
            self.links0.into_iter().map(AtomicU32::into_inner),
        );
        let mut upper_offsets = vec![0u32];
        let mut upper_links = Vec::new();
        for r in 0..n {
            let level = self.levels[r] as usize;
            for l in 1..=level {
                let start = self.upper_start[r] as usize + (l - 1) * (1 + self.cap_up);
                let c = self.upper[start].load(Relaxed) as usize;
                upper_links.extend(
                    self.upper[start + 1..start + 1 + c]
                        .iter()
                        .map(|a| a.load(Relaxed)),
                );
                upper_offsets.push(upper_links.len() as u32);
            }
        }
        FlatGraph::assemble(
            self.dim,
            self.rows.into(),
            stride,
            links0.into(),
            self.levels,
            upper_offsets,
            upper_links,
            entry,
            max_level as usize,
        )
    }

    #[inline(always)]
    fn row(&self, r: u32) -> &[f32] {
        let s = r as usize * self.dim;
        &self.rows[s..s + self.dim]
    }

    /// `[count, ids...]` of row `r` on `layer` (empty if the row does not reach that layer).
    #[inline(always)]
    fn block(&self, r: u32, layer: usize) -> &[AtomicU32] {
        let r = r as usize;
        if layer == 0 {
            let s = r * (1 + self.cap0);
            &self.links0[s..s + 1 + self.cap0]
        } else if layer <= self.levels[r] as usize {
            let s = self.upper_start[r] as usize + (layer - 1) * (1 + self.cap_up);
            &self.upper[s..s + 1 + self.cap_up]
        } else {
            &[]
        }
    }

    /// Copies row `r`'s neighbours on `layer` into `out` (lock-free read; see the module docs).
    #[inline(always)]
    fn read_list(&self, r: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend(self.list_iter(r, layer));
    }

    /// Overwrites row `r`'s list on `layer` (caller holds `r`'s lock).
    fn write_list(&self, r: u32, layer: usize, ids: impl ExactSizeIterator<Item = u32>) {
        let b = self.block(r, layer);
        let cap = b.len() - 1;
        let mut c = 0;
        for (slot, id) in b[1..].iter().zip(ids) {
            slot.store(id, Relaxed);
            c += 1;
        }
        debug_assert!(c <= cap);
        b[0].store(c as u32, Relaxed);
    }

    /// Inserts rows `range` (their vectors and levels are already in place) on the global rayon pool.
    fn insert_range(&self, range: std::ops::Range<usize>, progress: &dyn Progress) {
        let mut start = range.start;
        // The first node of an empty graph becomes the entry point; insert a few rows on one thread
        // so the parallel part starts from a connected core.
        let serial_end = range.end.min(start + 64);
        let empty = self.entry.lock().unwrap_or_else(|p| p.into_inner()).is_none();
        if empty {
            while start < serial_end {
                self.insert_one(start as u32);
                start += 1;
            }
            progress.inc((start - range.start) as u64);
        }
        let next = AtomicUsize::new(start);
        let end = range.end;
        let threads = rayon::current_num_threads().max(1);
        (0..threads).into_par_iter().for_each(|_| {
            let mut done = 0usize;
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= end {
                    break;
                }
                self.insert_one(i as u32);
                done += 1;
                if done == PROGRESS_EVERY {
                    progress.inc(done as u64);
                    done = 0;
                }
            }
            progress.inc(done as u64);
        });
    }

    fn insert_one(&self, r: u32) {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    return unsafe { self.insert_avx2(r, &mut s) };
                }
            }
            self.insert_impl(r, &mut s)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn insert_avx2(&self, r: u32, s: &mut Scratch) {
        // Everything below is `inline(always)`, so it is compiled with AVX2/FMA here.
        self.insert_impl(r, s)
    }

    #[inline(always)]
    fn dist(&self, a: u32, b: u32) -> f32 {
        sq_l2_portable(self.row(a), self.row(b))
    }

    #[inline(always)]
    fn insert_impl(&self, r: u32, s: &mut Scratch) {
        let level = self.levels[r as usize];
        let mut global = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        let Some((entry, top)) = *global else {
            *global = Some((r, level));
            return;
        };
        // Keep the global lock only when this node raises the top layer (rare).
        let global = if level > top {
            Some(global)
        } else {
            drop(global);
            None
        };
        let q = self.row(r);
        let (mut cur, mut cur_d) = self.descend(q, entry, top as usize, level as usize);
        for layer in (0..=level.min(top) as usize).rev() {
            self.beam::<false, false>(q, cur, cur_d, layer, self.ef_construction, None, s);
            let Some(&closest) = s.found.first() else { break };
            (cur_d, cur) = unpack(closest);
            self.connect(r, layer, s);
        }
        if let Some(mut g) = global {
            *g = Some((r, level));
        }
    }

    /// hnswlib's `getNeighborsByHeuristic2`: from `cands` (ascending packed keys, distances to the
    /// node) keeps a candidate only if it is closer to the node than to every one already kept,
    /// up to `max` of them, into `out` (ascending).
    #[inline(always)]
    fn heuristic(&self, cands: &[u64], max: usize, out: &mut Vec<u64>) {
        out.clear();
        if cands.len() <= max {
            out.extend_from_slice(cands);
            return;
        }
        for &c in cands {
            if out.len() >= max {
                break;
            }
            let (d, id) = unpack(c);
            // A plain loop, not `Iterator::all`: a closure the compiler does not inline would run
            // the distance without AVX2 (profiled: 6% of a build).
            let mut good = true;
            for &k in out.iter() {
                if self.dist(id, unpack(k).1) < d {
                    good = false;
                    break;
                }
            }
            if good {
                out.push(c);
            }
        }
    }

    /// hnswlib's `mutuallyConnectNewElement`: links `r` to the heuristic's pick among `s.found` on
    /// `layer`, and each of those back to `r`, pruning full lists by the heuristic.
    #[inline(always)]
    fn connect(&self, r: u32, layer: usize, s: &mut Scratch) {
        let cap = if layer == 0 { self.cap0 } else { self.cap_up };
        // A concurrent back-link can never show `r` to its own search, but be safe.
        s.found.retain(|&k| unpack(k).1 != r);
        let Scratch {
            found,
            selected,
            prune,
            pruned,
            list,
            ..
        } = s;
        self.heuristic(found, self.m.min(cap), selected);
        {
            let _g = self.locks[r as usize].lock().unwrap_or_else(|p| p.into_inner());
            self.write_list(r, layer, selected.iter().map(|&k| unpack(k).1));
        }
        for &k in selected.iter() {
            let (d_new, nb) = unpack(k);
            let _g = self.locks[nb as usize].lock().unwrap_or_else(|p| p.into_inner());
            let b = self.block(nb, layer);
            if b.is_empty() {
                continue;
            }
            let c = (b[0].load(Relaxed) as usize).min(cap);
            if b[1..=c].iter().any(|a| a.load(Relaxed) == r) {
                continue;
            }
            if c < cap {
                b[1 + c].store(r, Relaxed);
                b[0].store(c as u32 + 1, Relaxed);
                continue;
            }
            // Full: keep the heuristic's pick among the old neighbours and `r`.
            self.read_list(nb, layer, list);
            prune.clear();
            prune.push(pack(d_new, r));
            let v = self.row(nb);
            for &o in list.iter() {
                prune.push(pack(sq_l2_portable(v, self.row(o)), o));
            }
            prune.sort_unstable();
            self.heuristic(prune, cap, pruned);
            self.write_list(nb, layer, pruned.iter().map(|&k| unpack(k).1));
        }
    }

    /// Asks the cache for `row`'s vector ahead of its distance.
    #[inline(always)]
    fn prefetch(&self, row: u32) {
        prefetch_row(&self.rows, row, self.dim);
    }
}

impl Builder {
    /// Greedy descent from the entry point (on layer `top`) down to layer `layer + 1`, as in an
    /// insertion: the row to start `layer`'s beam search from, and its distance to `q`.
    #[inline(always)]
    fn descend(&self, q: &[f32], entry: u32, top: usize, layer: usize) -> (u32, f32) {
        greedy_descent(
            entry,
            (layer + 1)..=top,
            |r| sq_l2_portable(q, self.row(r)),
            |r, l| self.list_iter(r, l),
        )
    }

    /// Row `r`'s neighbours on `layer`, read one by one without a lock (see the module docs).
    #[inline(always)]
    fn list_iter(&self, r: u32, layer: usize) -> impl Iterator<Item = u32> + '_ {
        let b = self.block(r, layer);
        let ids = b.get(1..).unwrap_or(&[]);
        let c = b.first().map_or(0, |c| (c.load(Relaxed) as usize).min(ids.len()));
        ids[..c].iter().map(|a| a.load(Relaxed))
    }

    /// Reconnects rows that no walk over layer 0 from the entry point can reach, then those with at
    /// most [`WEAK_INDEGREE`] incoming links (about 2 % of rows). hnswlib's
    /// heuristic links a new row to few neighbours when they are close to each other, and those
    /// neighbours may later prune it away: early rows of a sparse region can end up as an island
    /// that only links among itself (a few rows in 10 k on clustered data). Each unreachable row
    /// is searched for like a new row, keeps the heuristic's pick among its old and found
    /// neighbours, and gets incoming links from the found neighbours with room, or else in place of
    /// the nearest one's farthest link whose target keeps another incoming link. Runs after the
    /// parallel insertion, on one thread; costs one walk over layer 0 and one search per weak row.
    fn link_unreachable(&self, new_from: usize) {
        let n = self.levels.len();
        let Some((entry, top)) = *self.entry.lock().unwrap_or_else(|p| p.into_inner()) else {
            return;
        };
        if n < 2 {
            return;
        }
        let mut indeg = vec![0u32; n];
        for b in self.links0.chunks(1 + self.cap0) {
            let c = (b[0].load(Relaxed) as usize).min(self.cap0);
            for id in &b[1..=c] {
                indeg[id.load(Relaxed) as usize] += 1;
            }
        }
        let mut reach = vec![false; n];
        let mut stack = Vec::new();
        let mut list = Vec::new();
        let mark = |from: u32, reach: &mut Vec<bool>, stack: &mut Vec<u32>, list: &mut Vec<u32>| {
            if reach[from as usize] {
                return;
            }
            reach[from as usize] = true;
            stack.push(from);
            while let Some(r) = stack.pop() {
                self.read_list(r, 0, list);
                for &nb in list.iter() {
                    if !reach[nb as usize] {
                        reach[nb as usize] = true;
                        stack.push(nb);
                    }
                }
            }
        };
        mark(entry, &mut reach, &mut stack, &mut list);
        let unreachable: Vec<u32> = (0..n as u32).filter(|&r| !reach[r as usize]).collect();
        let mut s = Scratch::default();
        let mut cands: Vec<u64> = Vec::new();
        let mut selected: Vec<u64> = Vec::new();
        for &x in &unreachable {
            if reach[x as usize] {
                continue;
            }
            let q = self.row(x);
            let (ep, ep_d) = self.descend(q, entry, top as usize, 0);
            self.beam::<false, false>(q, ep, ep_d, 0, self.ef_construction, None, &mut s);
            // x's new list: the heuristic's pick among its old neighbours and the found ones.
            self.read_list(x, 0, &mut list);
            cands.clear();
            cands.extend(s.found.iter().copied().filter(|&k| unpack(k).1 != x));
            for &o in &list {
                if !cands.iter().any(|&k| unpack(k).1 == o) {
                    cands.push(pack(sq_l2_portable(q, self.row(o)), o));
                }
            }
            cands.sort_unstable();
            self.heuristic(&cands, self.cap0, &mut selected);
            for &o in &list {
                indeg[o as usize] -= 1;
            }
            self.write_list(x, 0, selected.iter().map(|&k| unpack(k).1));
            for &k in &selected {
                indeg[unpack(k).1 as usize] += 1;
            }
            // Incoming links from reachable rows, until it has two (at least one more).
            let want = 2usize.saturating_sub(indeg[x as usize] as usize).max(1);
            let added = self.link_in(x, &s.found, want, |y| !reach[y as usize]);
            indeg[x as usize] += added as u32;
            let linked = added > 0;
            if !linked {
                let nearest = s
                    .found
                    .iter()
                    .map(|&k| unpack(k).1)
                    .find(|&y| y != x && reach[y as usize]);
                let Some(y) = nearest else { continue };
                self.read_list(y, 0, &mut list);
                let victim = list
                    .iter()
                    .enumerate()
                    .filter(|&(_, &z)| z != x && indeg[z as usize] >= 2)
                    .max_by(|a, b| self.dist(y, *a.1).total_cmp(&self.dist(y, *b.1)))
                    .map(|(i, &z)| (i, z));
                let Some((i, z)) = victim else { continue };
                self.block(y, 0)[1 + i].store(x, Relaxed);
                indeg[z as usize] -= 1;
                indeg[x as usize] += 1;
            }
            mark(x, &mut reach, &mut stack, &mut list);
        }
        // Reachable but barely: the only links into these rows may come from an island they
        // belong to, which greedy search from outside never enters (ML-100K item vectors: six
        // consecutive rows linked only among themselves and to one outside row, two of them
        // missed by their own search even at ef 200). Each gets links in from its nearest rows
        // outside its own list, where they have room; no existing link changes.
        // Only the rows just inserted (`new_from..`): an `index add` of a few rows must not search
        // for every weak row of a large graph again. The bar scales with `m` (at small m every
        // row has few links in).
        let bar = WEAK_INDEGREE.min(self.m as u32 / 4);
        let weak: Vec<u32> = (new_from.min(n) as u32..n as u32)
            .filter(|&r| r != entry && indeg[r as usize] <= bar)
            .collect();
        for &x in &weak {
            let q = self.row(x);
            let (ep, ep_d) = self.descend(q, entry, top as usize, 0);
            self.beam::<false, false>(q, ep, ep_d, 0, self.ef_construction, None, &mut s);
            self.read_list(x, 0, &mut list);
            self.link_in(x, &s.found, WEAK_INDEGREE as usize, |y| list.contains(&y));
        }
    }

    /// Appends `x` to the layer-0 lists of the rows of `found` (ascending keys: nearest first)
    /// that have room and do not link to it yet, skipping `x` and the rows `skip` names, until
    /// `max` were added; returns how many. No existing link changes.
    fn link_in(&self, x: u32, found: &[u64], max: usize, skip: impl Fn(u32) -> bool) -> usize {
        let mut added = 0;
        for &k in found {
            if added >= max {
                break;
            }
            let y = unpack(k).1;
            if y == x || skip(y) {
                continue;
            }
            let b = self.block(y, 0);
            let c = (b[0].load(Relaxed) as usize).min(self.cap0);
            if c < self.cap0 && !b[1..=c].iter().any(|a| a.load(Relaxed) == x) {
                b[1 + c].store(x, Relaxed);
                b[0].store(c as u32 + 1, Relaxed);
                added += 1;
            }
        }
        added
    }
}

/// Start of each row's upper block (`NO_SLOT`-free: rows without upper layers get the running
/// offset, never used) and the total length.
fn upper_layout(levels: &[u8], cap_up: usize) -> (Vec<u32>, usize) {
    let mut start = Vec::with_capacity(levels.len());
    let mut total = 0usize;
    for &l in levels {
        start.push(total as u32);
        total += l as usize * (1 + cap_up);
    }
    (start, total)
}

/// False when the environment sets `TWOTOWER_NO_REPAIR` (any value): the graph as insertion left
/// it, for side-by-side measurements of what the repair pass costs and buys. Never for real indexes.
fn repair_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| std::env::var_os("TWOTOWER_NO_REPAIR").is_none())
}

/// Runs the repair pass over `queue` (unless turned off, see [`repair_wanted`]) and, when it had
/// rows to link, says so in a note (how many, how, how long): the count is what `index check`
/// would have reported without the pass.
fn repair_and_note(b: &Builder, queue: Vec<u32>, ef_search: usize, progress: &dyn Progress) -> RepairStats {
    if !repair_wanted() {
        return RepairStats::default();
    }
    progress.set_message("every row found by its own search");
    let t = std::time::Instant::now();
    let stats = b.repair(queue, ef_search);
    if stats.missed > 0 {
        progress.note(&format!(
            "repair pass: {} of {} rows checked were not found by their own search at ef {}; {} linked by the heuristic, {} forced, in {} round(s), {} rows searched again, {} left, in {:.1} s",
            stats.missed,
            stats.checked,
            ef_search.max(SELF_K),
            stats.linked,
            stats.forced,
            stats.rounds,
            stats.searched_again,
            stats.left,
            t.elapsed().as_secs_f64()
        ));
    }
    stats
}

/// [`build_with_stats`] at the default `ef_search`, for tests.
#[cfg(test)]
pub(crate) fn build(
    dim: usize,
    rows: Vec<f32>,
    m: usize,
    ef_construction: usize,
    progress: &dyn Progress,
) -> FlatGraph {
    let ef_search = crate::hnsw::HnswParams::default().ef_search;
    build_with_stats(dim, rows, m, ef_construction, ef_search, progress).0
}

/// Builds a graph over `rows` (n × `dim` unit vectors) with hnswlib's algorithm on the global pool;
/// every row is then found by its own search at `ef_search` (the repair pass, `repair.rs`). Also
/// returns what the repair pass did.
pub(crate) fn build_with_stats(
    dim: usize,
    rows: Vec<f32>,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    progress: &dyn Progress,
) -> (FlatGraph, RepairStats) {
    let n = rows.len() / dim;
    let levels = levels_for(0, n, m);
    let b = Builder::new(dim, rows, levels, m, ef_construction);
    b.insert_range(0..n, progress);
    b.link_unreachable(0);
    let stats = repair_and_note(&b, (0..n as u32).collect(), ef_search, progress);
    (b.into_flat(), stats)
}

/// Inserts `extra` (unit vectors) into `flat`'s graph; the new rows follow the old ones. The repair
/// pass then covers every row, old ones included. Also returns what the repair pass did.
pub(crate) fn insert_with_stats(
    flat: FlatGraph,
    extra: &[f32],
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    progress: &dyn Progress,
) -> (FlatGraph, RepairStats) {
    let old = flat.len;
    let b = Builder::from_flat(flat, extra, m, ef_construction);
    let n = b.levels.len();
    b.insert_range(old..n, progress);
    b.link_unreachable(old);
    // Every row, not only the new ones and those that lost a link in: a new link changes the walk
    // of every search that expands its row, and old rows that lost no link were seen missed after
    // small inserts. One search per row, each stopping at its row.
    let stats = repair_and_note(&b, (0..n as u32).collect(), ef_search, progress);
    (b.into_flat(), stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_geometric_law_and_do_not_depend_on_batching() {
        let all = levels_for(0, 200_000, 16);
        let mut split = levels_for(0, 70_000, 16);
        split.extend(levels_for(70_000, 130_000, 16));
        assert_eq!(all, split);
        // P(level ≥ 1) = 1/16.
        let up = all.iter().filter(|&&l| l >= 1).count() as f64 / all.len() as f64;
        assert!((up - 1.0 / 16.0).abs() < 0.004, "{up}");
        let up2 = all.iter().filter(|&&l| l >= 2).count() as f64 / all.len() as f64;
        assert!((up2 - 1.0 / 256.0).abs() < 0.001, "{up2}");
        assert!(all.iter().all(|&l| l <= MAX_LEVEL));
    }
}

#[cfg(test)]
mod reach_tests {
    use super::*;
    use twotower_data::progress::NoProgress;

    /// Rows no list points to (none), and rows that do not find themselves at ef 48 (none, after
    /// the repair pass), over builds at two efc (islands of early rows appeared here before
    /// `link_unreachable`). Built on one thread: a parallel graph varies with thread timing, and
    /// an assertion on it would too (`index check` measures self-reachability of real builds).
    #[test]
    fn builds_leave_no_row_unreachable() {
        let (n, dim) = (10_000, 32);
        let v = crate::synthetic::clustered_unit_vectors(n, dim, 200, 0.6, 1);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for efc in [100, 200] {
            let g = one.install(|| build(dim, v.clone(), 16, efc, &NoProgress));
            let mut indeg = vec![0u32; n];
            for r in 0..n {
                let s = r * g.stride;
                for &x in &g.links0[s + 1..s + 1 + g.links0[s] as usize] {
                    indeg[x as usize] += 1;
                }
            }
            // No orphan, and no row left with a single way in (weak rows get links in after the
            // build: without that, a few rows per 10 k have one).
            let orphans: Vec<usize> = (0..n)
                .filter(|&i| indeg[i] <= 1 && i != g.entry as usize)
                .collect();
            assert!(
                orphans.is_empty(),
                "efc {efc}: rows with ≤ 1 link in: {orphans:?}"
            );
            let miss: Vec<usize> = (0..n)
                .filter(|&i| {
                    let q = &v[i * dim..(i + 1) * dim];
                    !g.search(q, 10, 48, None).iter().any(|h| h.row as usize == i)
                })
                .collect();
            assert!(miss.is_empty(), "efc {efc}: not found {miss:?}");
        }
    }
}

#[cfg(test)]
mod island_tests {
    use super::*;
    use twotower_data::progress::NoProgress;

    /// An island as found in ML-100K item vectors: a few rows whose layer-0 lists point only at
    /// each other, entered by a single link from outside, so greedy search from the entry rarely
    /// walks in. After `link_unreachable`, each of them has links in from rows outside the island
    /// and finds itself at ef 48.
    #[test]
    fn weak_rows_get_links_in_from_outside_their_island() {
        let (n, dim, m) = (3_000, 32, 16);
        let v = crate::synthetic::clustered_unit_vectors(n, dim, 50, 0.6, 3);
        let b = Builder::new(dim, v.clone(), levels_for(0, n, m), m, 100);
        b.insert_range(0..n, &NoProgress);
        let entry = b.entry.lock().unwrap().unwrap().0;
        let island: Vec<u32> = (1000..1004)
            .filter(|&r| r != entry && b.levels[r as usize] == 0)
            .collect();
        assert!(island.len() >= 3);
        let mut list = Vec::new();
        for r in 0..n as u32 {
            if island.contains(&r) {
                let others: Vec<u32> = island.iter().copied().filter(|&x| x != r).collect();
                b.write_list(r, 0, others.into_iter());
            } else {
                b.read_list(r, 0, &mut list);
                let kept: Vec<u32> = list.iter().copied().filter(|x| !island.contains(x)).collect();
                b.write_list(r, 0, kept.into_iter());
            }
        }
        // One way in, from a row outside.
        let door = (0..n as u32)
            .find(|&r| {
                b.read_list(r, 0, &mut list);
                !island.contains(&r) && r != entry && list.len() < b.cap0
            })
            .unwrap();
        b.read_list(door, 0, &mut list);
        list.push(island[0]);
        b.write_list(door, 0, list.clone().into_iter());

        b.link_unreachable(0);
        let mut from_outside = vec![0; island.len()];
        for r in (0..n as u32).filter(|r| !island.contains(r) && *r != door) {
            b.read_list(r, 0, &mut list);
            for (i, x) in island.iter().enumerate() {
                from_outside[i] += usize::from(list.contains(x));
            }
        }
        assert!(
            from_outside.iter().all(|&c| c >= 2),
            "links in from outside: {from_outside:?}"
        );
        let g = b.into_flat();
        for &x in &island {
            let q = &v[x as usize * dim..(x as usize + 1) * dim];
            assert!(
                g.search(q, 10, 48, None).iter().any(|h| h.row == x),
                "row {x} not found"
            );
        }
    }
}
