//! The repair pass: every row is found by its own search at the default `ef`.
//!
//! A graph in which every row is reachable from the entry point (see `link_unreachable`) can still
//! hide rows from a search: the beam settles among a row's nearest neighbours, but none of them
//! links to it any more (the heuristic pruned it from their lists for closer rows, and the rows
//! that still link to it lie elsewhere). `index check` counts such rows as unreachable; on a 1 M-item
//! catalogue about 0.1 % of rows were. The pass searches for every row exactly as a query at the
//! default `ef` would, and links each row that the search does not return into the list of the
//! nearest row that search expanded: by the neighbour-selection heuristic where it keeps the row,
//! else in place of the farthest link, of the nearest expanded row that has one, whose target has
//! another way in. Neither way removes a link the pass itself added, so two rows cannot take turns.
//! A linked row is then found by the same search, because the row linking to it is expanded before
//! the search ends.
//!
//! A link changes the walk of every search that expands the linking row, so a row found before can
//! be missed after. Each search records the rows whose lists it read (its walk, up to the moment it
//! reaches its row); a search that reads no changed list runs exactly as before and still finds its
//! row. After each round of links, the rows whose recorded walk read a list that changed are searched
//! again, with the rows still missed, and so on until a round links nothing: then every row's last
//! search ran on the final graph and found its row. Rounds are bounded ([`ROUNDS`]); rows still
//! missed after the last are reported as left (none seen).
//!
//! Searches run in parallel on the unchanged graph (the first round takes rows in breadth-first
//! graph order, for the cache; the result does not depend on the order); links are written on one
//! thread in row order, so the pass is deterministic given the graph it starts from, whatever the
//! number of threads.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;

use super::{Builder, Scratch, SCRATCH};
use crate::flat::{pack, unpack};
use crate::metric::sq_l2_portable;

/// The `k` of `index check`'s self-search (`CheckParams::default().k`): a row counts as found when
/// its own search at the default `ef` returns it among this many.
pub(crate) const SELF_K: usize = 10;
/// Rounds of search-and-link; rows still missed after the last are left as they are (none seen).
const ROUNDS: usize = 32;
/// How many of the rows nearest to a missed row are offered it through the heuristic before one of
/// them takes it in place of its farthest link.
const HEURISTIC_TRIES: usize = 3;

/// What the repair pass did (for tests and benchmarks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RepairStats {
    /// Rows searched in the first round.
    pub(crate) checked: usize,
    /// Rows the first round's search missed.
    pub(crate) missed: usize,
    /// Links added through the heuristic (with room, or displacing what the heuristic drops).
    pub(crate) linked: usize,
    /// Links forced in place of a list's farthest link.
    pub(crate) forced: usize,
    /// Rows still missed after the last round.
    pub(crate) left: usize,
    /// Rounds that linked rows (0: the first round missed none).
    pub(crate) rounds: usize,
    /// Searches after the first round (rows whose walk read a changed list, and rows still missed).
    pub(crate) searched_again: usize,
}

/// Every searched row's walk (see the module docs): `span[r]` is its slice of `data`.
struct Walks {
    span: Vec<(usize, u32)>,
    data: Vec<u32>,
}

/// What one parallel batch of self-searches found: its missed rows, and its walks in row order.
#[derive(Default)]
struct Searched {
    missed: Vec<u32>,
    lens: Vec<u32>,
    data: Vec<u32>,
}

/// The links the pass added, and what it needs to choose the links it replaces.
struct Links {
    /// Incoming layer-0 links of every row.
    indeg: Vec<u32>,
    /// Links the pass added (`pin(from, to)`): it never removes them again.
    pinned: HashSet<u64>,
    /// Rows whose list changed in this round.
    modified: Vec<u32>,
}

fn pin(from: u32, to: u32) -> u64 {
    (u64::from(from) << 32) | u64::from(to)
}

/// Rows per parallel batch of self-searches.
const BATCH: usize = 2048;

impl Builder {
    /// Makes every row of `queue` found by its own search at `ef_search` (raised to [`SELF_K`]).
    /// See the module docs.
    pub(super) fn repair(&self, mut queue: Vec<u32>, ef_search: usize) -> RepairStats {
        let mut stats = RepairStats::default();
        let n = self.levels.len();
        let Some((entry, top)) = *self.entry.lock().unwrap_or_else(|p| p.into_inner()) else {
            return stats;
        };
        if n < 2 {
            return stats;
        }
        let ef = ef_search.max(SELF_K);
        let mut walks = Walks {
            span: vec![(0, 0); n],
            data: Vec::new(),
        };
        let mut links: Option<Links> = None;
        let mut changed = vec![false; n];
        let mut s = Scratch::default();
        for round in 0..=ROUNDS {
            queue.sort_unstable();
            queue.dedup();
            queue.retain(|&r| (r as usize) < n);
            if round == 0 && queue.len() > BATCH {
                // Rows near each other in the graph one after the other: their searches read the
                // same lists and vectors, which are then still in the cache.
                queue = self.graph_order(&queue, entry);
            }
            let missed = self.search_recording(&queue, ef, entry, top as usize, &mut walks);
            if round == 0 {
                stats.checked = queue.len();
                stats.missed = missed.len();
            } else {
                stats.searched_again += queue.len();
            }
            if missed.is_empty() || round == ROUNDS {
                stats.left = missed.len();
                break;
            }
            stats.rounds += 1;
            let links = links.get_or_insert_with(|| Links {
                indeg: self.in_degrees(),
                pinned: HashSet::new(),
                modified: Vec::new(),
            });
            links.modified.clear();
            for &x in &missed {
                self.link_missed(x, ef, (entry, top as usize), links, &mut stats, &mut s);
            }
            let modified = &links.modified;
            for &y in modified {
                changed[y as usize] = true;
            }
            // Rows whose last search read a list that changed, and the rows still missed.
            let changed_ref = &changed;
            let walks_ref = &walks;
            queue = (0..n as u32)
                .into_par_iter()
                .filter(|&r| {
                    let (start, len) = walks_ref.span[r as usize];
                    walks_ref.data[start..start + len as usize]
                        .iter()
                        .any(|&w| changed_ref[w as usize])
                })
                .collect();
            queue.extend_from_slice(&missed);
            for &y in modified {
                changed[y as usize] = false;
            }
        }
        stats
    }

    /// The rows of `queue` (ascending) in the order a breadth-first walk over layer 0 from `entry`
    /// reaches them, then those it does not reach, ascending.
    fn graph_order(&self, queue: &[u32], entry: u32) -> Vec<u32> {
        let n = self.levels.len();
        let mut wanted = vec![false; n];
        for &r in queue {
            wanted[r as usize] = true;
        }
        let mut seen = vec![false; n];
        let mut order = Vec::with_capacity(n);
        seen[entry as usize] = true;
        order.push(entry);
        let mut i = 0;
        while i < order.len() {
            let r = order[i];
            i += 1;
            for nb in self.list_iter(r, 0) {
                if !seen[nb as usize] {
                    seen[nb as usize] = true;
                    order.push(nb);
                }
            }
        }
        order.retain(|&r| wanted[r as usize]);
        order.extend(queue.iter().copied().filter(|&r| !seen[r as usize]));
        order
    }

    /// Searches for every row of `queue` in parallel, each as its own query; records each walk in
    /// `walks` and returns the rows not found, ascending.
    fn search_recording(
        &self,
        queue: &[u32],
        ef: usize,
        entry: u32,
        top: usize,
        walks: &mut Walks,
    ) -> Vec<u32> {
        let batches: Vec<Searched> = queue
            .par_chunks(BATCH)
            .map(|rows| {
                let mut out = Searched::default();
                for &x in rows {
                    let before = out.data.len();
                    let found = self.finds_itself(x, ef, entry, top, &mut out.data);
                    out.lens.push((out.data.len() - before) as u32);
                    if !found {
                        out.missed.push(x);
                    }
                }
                out
            })
            .collect();
        // Walks of rows searched again replace their old ones; the old data stays (a few % more).
        if walks.data.is_empty() {
            walks.data.reserve(batches.iter().map(|b| b.data.len()).sum());
        }
        let mut missed = Vec::new();
        for (rows, b) in queue.chunks(BATCH).zip(batches) {
            let mut at = walks.data.len();
            walks.data.extend_from_slice(&b.data);
            for (&x, &len) in rows.iter().zip(&b.lens) {
                walks.span[x as usize] = (at, len);
                at += len as usize;
            }
            missed.extend(b.missed);
        }
        missed.sort_unstable();
        missed
    }

    /// Incoming layer-0 links of every row.
    fn in_degrees(&self) -> Vec<u32> {
        let mut indeg = vec![0u32; self.levels.len()];
        for b in self.links0.chunks(1 + self.cap0) {
            let c = (b[0].load(Relaxed) as usize).min(self.cap0);
            for id in &b[1..=c] {
                indeg[id.load(Relaxed) as usize] += 1;
            }
        }
        indeg
    }

    /// Links missed row `x` into the list of the nearest row its own search expanded (see the
    /// module docs); the search descends from `entry` on its top layer. Rows whose list changed
    /// are pushed to `links.modified`.
    fn link_missed(
        &self,
        x: u32,
        ef: usize,
        (entry, top): (u32, usize),
        links: &mut Links,
        stats: &mut RepairStats,
        s: &mut Scratch,
    ) {
        let Links {
            indeg,
            pinned,
            modified,
        } = links;
        let q = self.row(x);
        let (ep, ep_d) = self.descend(q, entry, top, 0);
        if self.beam::<false, false>(q, ep, ep_d, 0, ef, Some(x), s) {
            return; // Found after all (an earlier link of this round reached it).
        }
        let nearest: Vec<u32> = s
            .found
            .iter()
            .map(|&k| unpack(k).1)
            .filter(|&y| y != x && !self.list_iter(y, 0).any(|z| z == x))
            .collect();
        let mut list = std::mem::take(&mut s.list);
        let mut cands = std::mem::take(&mut s.prune);
        let mut kept = std::mem::take(&mut s.pruned);
        let mut done = None;
        for &y in nearest.iter().take(HEURISTIC_TRIES) {
            self.read_list(y, 0, &mut list);
            if list.len() < self.cap0 {
                list.push(x);
                self.write_list(y, 0, list.iter().copied());
                done = Some(y);
                break;
            }
            // Full: the heuristic's pick among y's links and x, as when a new row links back.
            let v = self.row(y);
            cands.clear();
            cands.push(pack(sq_l2_portable(v, self.row(x)), x));
            cands.extend(list.iter().map(|&o| pack(sq_l2_portable(v, self.row(o)), o)));
            cands.sort_unstable();
            self.heuristic(&cands, self.cap0, &mut kept);
            let keeps = |z: u32| kept.iter().any(|&k| unpack(k).1 == z);
            if keeps(x) && list.iter().all(|&o| keeps(o) || !pinned.contains(&pin(y, o))) {
                for &o in &list {
                    if !kept.iter().any(|&k| unpack(k).1 == o) {
                        indeg[o as usize] -= 1;
                    }
                }
                self.write_list(y, 0, kept.iter().map(|&k| unpack(k).1));
                done = Some(y);
                break;
            }
        }
        if done.is_none() {
            // Forced: x replaces the farthest link of the nearest row that has one whose target
            // keeps another way in and that the pass did not add (so two rows cannot take turns).
            for &y in &nearest {
                self.read_list(y, 0, &mut list);
                let victim = list
                    .iter()
                    .enumerate()
                    .filter(|&(_, &z)| indeg[z as usize] >= 2 && !pinned.contains(&pin(y, z)))
                    .map(|(i, &z)| (self.dist(y, z), i, z))
                    .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                if let Some((_, i, z)) = victim {
                    self.block(y, 0)[1 + i].store(x, Relaxed);
                    indeg[z as usize] -= 1;
                    stats.forced += 1;
                    done = Some(y);
                    break;
                }
            }
        } else {
            stats.linked += 1;
        }
        if let Some(y) = done {
            indeg[x as usize] += 1;
            pinned.insert(pin(y, x));
            modified.push(y);
        }
        s.list = list;
        s.prune = cands;
        s.pruned = kept;
    }

    /// Whether row `x`'s own search at `ef` returns it, the same search as the graph's query
    /// (`FlatGraph::search` with `k` ≤ `ef`): a row it visits it returns, since nothing is nearer
    /// to `x` than `x` itself, so the search stops as soon as it does. Appends its walk to `walk`.
    fn finds_itself(&self, x: u32, ef: usize, entry: u32, top: usize, walk: &mut Vec<u32>) -> bool {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    return unsafe { self.finds_itself_avx2(x, ef, entry, top, walk, &mut s) };
                }
            }
            self.self_search(x, ef, entry, top, walk, &mut s)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn finds_itself_avx2(
        &self,
        x: u32,
        ef: usize,
        entry: u32,
        top: usize,
        walk: &mut Vec<u32>,
        s: &mut Scratch,
    ) -> bool {
        // Everything below is `inline(always)`, so it is compiled with AVX2/FMA here.
        self.self_search(x, ef, entry, top, walk, s)
    }

    /// `FlatGraph::search` (no filter) for row `x`'s vector over the builder's lists, stopping as
    /// soon as it visits `x`: greedy descent (upper layers, which the pass never changes), then a
    /// beam of `ef` on layer 0, whose walk is appended to `walk`.
    #[inline(always)]
    fn self_search(
        &self,
        x: u32,
        ef: usize,
        entry: u32,
        top: usize,
        walk: &mut Vec<u32>,
        s: &mut Scratch,
    ) -> bool {
        let q = self.row(x);
        let (ep, ep_d) = self.descend(q, entry, top, 0);
        let found = self.beam::<true, true>(q, ep, ep_d, 0, ef, Some(x), s);
        walk.extend_from_slice(&s.walk);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::super::{levels_for, Builder};
    use super::*;
    use crate::flat::FlatGraph;
    use twotower_data::progress::NoProgress;

    /// The graph as insertion and `link_unreachable` leave it, on one thread (the same graph every
    /// time), before the repair pass.
    fn unrepaired(v: &[f32], dim: usize, m: usize, efc: usize) -> Builder {
        let n = v.len() / dim;
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        one.install(|| {
            let b = Builder::new(dim, v.to_vec(), levels_for(0, n, m), m, efc);
            b.insert_range(0..n, &NoProgress);
            b.link_unreachable(0);
            b
        })
    }

    /// Rows that `FlatGraph::search` (the query path) does not return among `k` = [`SELF_K`] at `ef`.
    fn misses(g: &FlatGraph, v: &[f32], ef: usize) -> Vec<u32> {
        (0..g.len as u32)
            .filter(|&r| {
                let q = &v[r as usize * g.dim..(r as usize + 1) * g.dim];
                !g.search(q, SELF_K, ef, None).iter().any(|h| h.row == r)
            })
            .collect()
    }

    /// A sparse graph (m = 3, small ef) on clustered data misses rows before the pass; after it,
    /// none, by the query path, and the pass says it left none. The pass runs on two threads here:
    /// its searches run on an unchanged graph and its links are written in row order, so it gives
    /// the same lists as on one thread.
    #[test]
    fn the_pass_leaves_no_row_missed_and_does_not_depend_on_threads() {
        let (n, dim, m, efc, ef) = (4_000, 16, 3, 12, 10);
        let v = crate::synthetic::clustered_unit_vectors(n, dim, 40, 0.5, 11);
        let before = unrepaired(&v, dim, m, efc).into_flat();
        let missed_before = misses(&before, &v, ef);
        assert!(
            missed_before.len() >= 5,
            "too few rows missed to exercise the pass: {missed_before:?}"
        );

        let mut graphs = Vec::new();
        for threads in [1, 2] {
            let b = unrepaired(&v, dim, m, efc);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let stats = pool.install(|| b.repair((0..n as u32).collect(), ef));
            assert_eq!(stats.missed, missed_before.len(), "{stats:?}");
            assert_eq!(stats.left, 0, "{stats:?}");
            assert!(stats.rounds >= 1, "{stats:?}");
            let g = b.into_flat();
            assert_eq!(
                misses(&g, &v, ef),
                Vec::<u32>::new(),
                "{threads} threads, {stats:?}"
            );
            graphs.push((stats, g.links0, g.upper_links));
        }
        assert_eq!(graphs[0], graphs[1]);
    }
}
