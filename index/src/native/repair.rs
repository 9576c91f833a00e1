//! The repair pass: every row is found by its own search at the default `ef`.
//!
//! A graph in which every row is reachable from the entry point (see `link_unreachable`) can still
//! hide rows from a search: the beam settles among a row's nearest neighbours, but none of them
//! links to it any more (the heuristic pruned it from their lists for closer rows, and the rows
//! that still link to it lie elsewhere). `index check` counts such rows as unreachable; on a 1 M-item
//! catalogue about 0.1 % of rows were. The pass searches for every row (every new row and every row
//! that lost a link in, after an insert) exactly as a query at the default `ef` would, and links each
//! row that the search does not return into the list of the nearest row that search expanded: by
//! the neighbour-selection heuristic where it keeps the row, else in place of that list's farthest
//! link whose target has another way in. A linked row is then found by the same search, because
//! the row linking to it is expanded before the search ends. Rows that lost a link in, and the
//! linking row and its neighbours (whose searches expand it most often, and may now take another
//! way), are searched again in the next round, for a bounded number of rounds.
//!
//! Searches run in parallel on the unchanged graph; links are written on one thread in row order,
//! so the pass is deterministic given the graph it starts from.

use std::cmp::Reverse;
use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;

use super::{Builder, Scratch, SCRATCH};
use crate::flat::{pack, unpack, Beam};
use crate::metric::sq_l2_portable;

/// The `k` of `index check`'s self-search (`CheckParams::default().k`): a row counts as found when
/// its own search at the default `ef` returns it among this many.
pub(crate) const SELF_K: usize = 10;
/// Rounds of search-and-link; rows still missed after the last are left as they are (none seen).
const ROUNDS: usize = 8;
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
}

impl Builder {
    /// Makes every row of `rows` found by its own search at `ef_search` (raised to [`SELF_K`]), and
    /// keeps it so for rows that lose a link in on the way. See the module docs.
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
        let mut indeg: Option<Vec<u32>> = None;
        let mut s = Scratch::default();
        for round in 0..=ROUNDS {
            queue.sort_unstable();
            queue.dedup();
            queue.retain(|&r| (r as usize) < n);
            let missed: Vec<u32> = queue
                .par_iter()
                .copied()
                .filter(|&x| !self.finds_itself(x, ef, entry, top as usize))
                .collect();
            if round == 0 {
                stats.checked = queue.len();
                stats.missed = missed.len();
            }
            if missed.is_empty() || round == ROUNDS {
                stats.left = missed.len();
                break;
            }
            let indeg = indeg.get_or_insert_with(|| self.in_degrees());
            let mut next = missed.clone();
            for &x in &missed {
                self.link_missed(x, ef, entry, top as usize, indeg, &mut next, &mut stats, &mut s);
            }
            queue = next;
        }
        stats
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
    /// module docs). Rows that lose a link in are pushed to `next`.
    #[allow(clippy::too_many_arguments)]
    fn link_missed(
        &self,
        x: u32,
        ef: usize,
        entry: u32,
        top: usize,
        indeg: &mut [u32],
        next: &mut Vec<u32>,
        stats: &mut RepairStats,
        s: &mut Scratch,
    ) {
        if self.self_search(x, ef, entry, top, false, s) {
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
            if kept.iter().any(|&k| unpack(k).1 == x) {
                for &o in &list {
                    if !kept.iter().any(|&k| unpack(k).1 == o) {
                        indeg[o as usize] -= 1;
                        next.push(o);
                    }
                }
                self.write_list(y, 0, kept.iter().map(|&k| unpack(k).1));
                done = Some(y);
                break;
            }
        }
        if let Some(y) = done {
            stats.linked += 1;
            indeg[x as usize] += 1;
            // y now scores x when expanded, which can reorder the beams of searches through y:
            // search again for y's neighbours, whose own searches expand y most often.
            next.push(y);
            next.extend(self.list_iter(y, 0));
        } else if let Some(&y) = nearest.first() {
            // Forced: x replaces y's farthest link whose target keeps another way in.
            self.read_list(y, 0, &mut list);
            let victim = list
                .iter()
                .enumerate()
                .filter(|&(_, &z)| indeg[z as usize] >= 2)
                .map(|(i, &z)| (self.dist(y, z), i, z))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some((_, i, z)) = victim {
                self.block(y, 0)[1 + i].store(x, Relaxed);
                indeg[z as usize] -= 1;
                indeg[x as usize] += 1;
                next.push(z);
                next.push(y);
                next.extend(self.list_iter(y, 0));
                stats.forced += 1;
            }
        }
        s.list = list;
        s.prune = cands;
        s.pruned = kept;
    }

    /// Whether row `x`'s own search at `ef` returns it, the same search as the graph's query
    /// (`FlatGraph::search` with `k` ≤ `ef`): a row it visits it returns, since nothing is nearer
    /// to `x` than `x` itself, so the search stops as soon as it does.
    fn finds_itself(&self, x: u32, ef: usize, entry: u32, top: usize) -> bool {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features the function is compiled for.
                    return unsafe { self.finds_itself_avx2(x, ef, entry, top, &mut s) };
                }
            }
            self.self_search(x, ef, entry, top, true, &mut s)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn finds_itself_avx2(&self, x: u32, ef: usize, entry: u32, top: usize, s: &mut Scratch) -> bool {
        // Everything below is `inline(always)`, so it is compiled with AVX2/FMA here.
        self.self_search(x, ef, entry, top, true, s)
    }

    /// `FlatGraph::search` (no filter) for row `x`'s vector, over the builder's lists: greedy
    /// descent, then a beam of `ef` on layer 0. Returns whether it visits `x`; with `stop_early`
    /// it returns as soon as it does, else it runs to the end and leaves its result in `s.found`
    /// (ascending).
    #[inline(always)]
    fn self_search(
        &self,
        x: u32,
        ef: usize,
        entry: u32,
        top_layer: usize,
        stop_early: bool,
        s: &mut Scratch,
    ) -> bool {
        let q = self.row(x);
        let (cur, cur_d) = self.descend(q, entry, top_layer, 0);
        let mut seen_x = cur == x;
        if seen_x && stop_early {
            return true;
        }
        s.beam.begin(self.levels.len());
        let Scratch {
            beam:
                Beam {
                    visited,
                    epoch,
                    candidates,
                    top,
                },
            found,
            list,
            ..
        } = s;
        let epoch = *epoch;
        visited[cur as usize] = epoch;
        let key = pack(cur_d, cur);
        top.push(key);
        candidates.push(Reverse(key));
        let mut lower = cur_d;
        while let Some(Reverse(c)) = candidates.pop() {
            let (cd, row) = unpack(c);
            if cd > lower && top.len() >= ef {
                break;
            }
            self.read_list(row, 0, list);
            for (j, &nb) in list.iter().enumerate() {
                if let Some(&next) = list.get(j + 1) {
                    self.prefetch(next);
                }
                let mark = &mut visited[nb as usize];
                if *mark == epoch {
                    continue;
                }
                *mark = epoch;
                if nb == x {
                    seen_x = true;
                    if stop_early {
                        return true;
                    }
                }
                let d = sq_l2_portable(q, self.row(nb));
                if top.len() < ef || d < lower {
                    let key = pack(d, nb);
                    candidates.push(Reverse(key));
                    top.push(key);
                    if top.len() > ef {
                        top.pop();
                    }
                    if let Some(&w) = top.peek() {
                        lower = unpack(w).0;
                    }
                }
            }
        }
        found.clear();
        found.extend(top.drain());
        found.sort_unstable();
        seen_x
    }
}
