//! The builder's one beam search: hnswlib's `searchBaseLayer` over the builder's lists, used by the
//! insertion (`ef_construction`, every layer), by `link_unreachable` and by the repair pass (a
//! row's own search at the default `ef` on layer 0, as `FlatGraph::search` runs it).

use std::cmp::Reverse;

use super::{Builder, Scratch};
use crate::flat::{pack, unpack, Beam};
use crate::metric::sq_l2_portable;

/// Vectors asked for ahead of their distance (as the graph search does).
const PREFETCH_AHEAD: usize = 3;

impl Builder {
    /// The `ef` nearest to `q` reachable on `layer` from `ep` (at distance `ep_d`), into `s.found`
    /// ascending. Returns whether the search visits `target` (false for `None`): with `STOP` it
    /// returns as soon as it does and leaves `s.found` as it was. With `RECORD`, `s.walk` is the
    /// rows whose lists the search read, in order: the search runs the same as long as none of
    /// their lists changes.
    ///
    /// `target`, `STOP` and `RECORD` are constants at every call site, so the insertion's search
    /// compiles to the plain loop.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn beam<const STOP: bool, const RECORD: bool>(
        &self,
        q: &[f32],
        ep: u32,
        ep_d: f32,
        layer: usize,
        ef: usize,
        target: Option<u32>,
        s: &mut Scratch,
    ) -> bool {
        if RECORD {
            s.walk.clear();
        }
        let mut seen_target = target == Some(ep);
        if STOP && seen_target {
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
            walk,
            ..
        } = s;
        let epoch = *epoch;
        visited[ep as usize] = epoch;
        let key = pack(ep_d, ep);
        top.push(key);
        candidates.push(Reverse(key));
        let mut lower = ep_d;
        while let Some(Reverse(c)) = candidates.pop() {
            let (cd, row) = unpack(c);
            if cd > lower && top.len() >= ef {
                break;
            }
            if RECORD {
                walk.push(row);
            }
            // Two passes, as the graph search does: mark the unvisited neighbours first, so memory
            // is only asked for rows that will be scored, then score them while the next few rows'
            // vectors are on their way. The order of the scores is the one-pass order.
            list.clear();
            for nb in self.list_iter(row, layer) {
                let mark = &mut visited[nb as usize];
                if *mark == epoch {
                    continue;
                }
                *mark = epoch;
                if target == Some(nb) {
                    seen_target = true;
                    if STOP {
                        return true;
                    }
                }
                list.push(nb);
            }
            for &nb in list.iter().take(PREFETCH_AHEAD) {
                self.prefetch(nb);
            }
            for (j, &nb) in list.iter().enumerate() {
                if let Some(&ahead) = list.get(j + PREFETCH_AHEAD) {
                    self.prefetch(ahead);
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
        seen_target
    }
}
