//! `data synth`: a dataset with planted structure, for tests, demos and benchmarks. Users and items
//! belong to latent clusters; items carry genre-like tags, an era and titles built from
//! cluster-specific words; users carry an age group (cluster-biased) and a region (noise). Each user
//! has a primary and a secondary cluster and drifts from the first towards the second over time; an
//! interaction is drawn from the user's current cluster with probability `affinity`, else from global
//! popularity, and items are picked by a Zipf-like popularity within either pool. A model that learns
//! the clusters beats popularity by a wide margin.
//!
//! Generation is deterministic per user (each user has its own seeded generator), so the output does
//! not depend on the thread count, and it streams: users are generated in waves of about a million
//! interactions and written as Parquet row groups, so memory grows with users and items, not with
//! interactions.

use std::collections::HashSet;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use rayon::prelude::*;
use serde::Serialize;

use crate::artifact::{Manifest, StagingDir};
use crate::dataset::{DATASET_FORMAT_VERSION, DATASET_KIND};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{
    write_items, write_users, InteractionWriter, ItemRows, UserRows, INTERACTIONS_FILE, ITEMS_FILE,
    USERS_FILE,
};
use crate::vocab::{IdBuildHasher, Vocabulary};

/// Options of `data synth`. The defaults are the quickstart size (trains in seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthOptions {
    /// Number of users.
    pub users: u32,
    /// Number of items.
    pub items: u32,
    /// Number of interactions (exact).
    pub interactions: u64,
    /// Number of latent clusters.
    pub clusters: u32,
    /// Generator seed.
    pub seed: u64,
    /// Probability that an interaction comes from the user's current cluster rather than global popularity.
    pub affinity: f64,
    /// Probability, at the end of the time range, that a user's in-cluster pick comes from their
    /// secondary cluster (it grows linearly from 0 at the start).
    pub drift: f64,
    /// Zipf exponent of item popularity.
    pub zipf_exponent: f64,
    /// Start of the time range (epoch seconds).
    pub start_ts: i64,
    /// Length of the time range in seconds.
    pub span_secs: i64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            users: 2_000,
            items: 1_000,
            interactions: 100_000,
            clusters: 16,
            seed: 42,
            affinity: 0.8,
            drift: 0.3,
            zipf_exponent: 0.9,
            start_ts: 1_577_836_800, // 2020-01-01
            span_secs: 365 * 86_400,
        }
    }
}

/// What `synth` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SynthReport {
    /// Interactions written.
    pub interactions: u64,
    /// Users (all have features; most have interactions).
    pub users: u64,
    /// Items (all have features; unpopular ones may have no interactions).
    pub items: u64,
}

const GENRES: [&str; 18] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "SciFi",
    "Thriller",
    "War",
    "Western",
];
const ERAS: [&str; 6] = ["1960s", "1970s", "1980s", "1990s", "2000s", "2010s"];
const AGES: [&str; 7] = ["under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"];
const GENERIC_WORDS: [&str; 24] = [
    "the", "of", "night", "return", "story", "last", "day", "secret", "city", "love", "war", "house",
    "river", "dream", "road", "king", "girl", "man", "summer", "game", "shadow", "home", "blue", "time",
];
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ren", "to", "va", "shi", "dor", "el", "un", "bra", "qui", "zan", "fe", "gor", "ith",
    "mo", "pla", "sen", "tur",
];
const WORDS_PER_CLUSTER: usize = 10;

/// Seeds a generator for a purpose and an index, so every stream is independent and reproducible.
fn rng_for(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    let mut s = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    s = s.wrapping_add(index.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    ChaCha8Rng::seed_from_u64(s)
}

/// Cumulative weights for sampling by binary search.
struct Cdf {
    ids: Vec<u32>,
    cum: Vec<f64>,
}

impl Cdf {
    fn new(ids: Vec<u32>, weights: impl Iterator<Item = f64>) -> Cdf {
        let mut acc = 0.0;
        let cum = weights
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        Cdf { ids, cum }
    }
    fn sample(&self, rng: &mut ChaCha8Rng) -> Option<u32> {
        let total = *self.cum.last()?;
        let x = rng.gen::<f64>() * total;
        let k = self.cum.partition_point(|&c| c <= x).min(self.ids.len() - 1);
        Some(self.ids[k])
    }
}

struct World {
    item_cluster: Vec<u32>,
    item_pop: Vec<f64>,
    user_primary: Vec<u32>,
    user_secondary: Vec<u32>,
    user_count: Vec<u32>,
    global: Cdf,
    per_cluster: Vec<Cdf>,
}

fn validate(o: &SynthOptions) -> Result<()> {
    let bad = |m: &str| Err(Error::InvalidArgument(m.to_string()));
    if o.users == 0 || o.items == 0 {
        return bad("--users and --items must be positive");
    }
    if o.interactions == 0 {
        return bad("--interactions must be positive");
    }
    if o.clusters == 0 || o.clusters > o.items {
        return bad("--clusters must be between 1 and --items");
    }
    if !(0.0..=1.0).contains(&o.affinity) || !(0.0..=1.0).contains(&o.drift) {
        return bad("affinity and drift must be within 0..=1");
    }
    if o.span_secs <= 0 {
        return bad("the time span must be positive");
    }
    // Refused before anything is allocated: each interaction takes about 24 bytes while it is
    // generated and written, each user and item a few dozen (counts, clusters, vocabulary).
    const LIMIT: u128 = 16 << 30;
    for (flag, n, per) in [
        ("--interactions", o.interactions as u128, 24u128),
        ("--users", o.users as u128, 64),
        ("--items", o.items as u128, 64),
    ] {
        let bytes = n * per;
        if bytes > LIMIT {
            return Err(Error::InvalidArgument(format!(
                "{flag} {n} needs about {:.1} GiB to generate, over the {} GiB a setting may ask for; choose a smaller value",
                bytes as f64 / (1u64 << 30) as f64,
                LIMIT >> 30
            )));
        }
    }
    // A per-user count is a u32.
    if o.interactions / u64::from(o.users) >= u64::from(u32::MAX) {
        return bad("--interactions per user must be below 4294967295");
    }
    Ok(())
}

fn build_world(o: &SynthOptions) -> World {
    let (nu, ni, nc) = (o.users as usize, o.items as usize, o.clusters);
    let mut rng = rng_for(o.seed, 1, 0);
    let item_cluster: Vec<u32> = (0..ni).map(|_| rng.gen_range(0..nc)).collect();
    // Popularity: a random rank per item, weight 1/(rank+1)^s.
    let mut rank: Vec<u32> = (0..ni as u32).collect();
    rand::seq::SliceRandom::shuffle(rank.as_mut_slice(), &mut rng);
    let item_pop: Vec<f64> = rank
        .iter()
        .map(|&r| 1.0 / ((r as f64) + 1.0).powf(o.zipf_exponent))
        .collect();
    let global = Cdf::new((0..ni as u32).collect(), item_pop.iter().copied());
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); nc as usize];
    for (i, &c) in item_cluster.iter().enumerate() {
        members[c as usize].push(i as u32);
    }
    let per_cluster = members
        .into_iter()
        .map(|m| {
            let w: Vec<f64> = m.iter().map(|&i| item_pop[i as usize]).collect();
            Cdf::new(m, w.into_iter())
        })
        .collect();
    let user_primary: Vec<u32> = (0..nu).map(|_| rng.gen_range(0..nc)).collect();
    let user_secondary: Vec<u32> = user_primary
        .iter()
        .map(|&p| {
            if nc == 1 {
                p
            } else {
                (p + rng.gen_range(1..nc)) % nc
            }
        })
        .collect();
    // Activity: log-normal weights scaled to the exact total; every user gets at least one.
    let ln = LogNormal::new(0.0, 1.0).expect("valid log-normal");
    let w: Vec<f64> = (0..nu).map(|_| ln.sample(&mut rng)).collect();
    let total_w: f64 = w.iter().sum();
    let n = o.interactions;
    let base = n.min(nu as u64);
    let rest = n - base; // each of the first `base` users gets one, the rest by weight
    let mut user_count: Vec<u32> = (0..nu)
        .map(|u| {
            let one = u64::from((u as u64) < base);
            (one as f64 + (rest as f64 * w[u] / total_w).floor()) as u32
        })
        .collect();
    let mut assigned: u64 = user_count.iter().map(|&c| c as u64).sum();
    let mut u = 0usize;
    while assigned < n {
        user_count[u % nu] += 1;
        assigned += 1;
        u += 1;
    }
    World {
        item_cluster,
        item_pop,
        user_primary,
        user_secondary,
        user_count,
        global,
        per_cluster,
    }
}

fn cluster_words(seed: u64, c: u32) -> Vec<String> {
    let mut rng = rng_for(seed, 2, c as u64);
    (0..WORDS_PER_CLUSTER)
        .map(|_| {
            let n = rng.gen_range(2..=3);
            (0..n)
                .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
                .collect::<String>()
        })
        .collect()
}

fn item_rows(o: &SynthOptions, w: &World, items: &Vocabulary) -> ItemRows {
    let nc = o.clusters as usize;
    let words: Vec<Vec<String>> = (0..nc as u32).map(|c| cluster_words(o.seed, c)).collect();
    let mut crng = rng_for(o.seed, 3, 0);
    let cluster_genres: Vec<(usize, usize)> = (0..nc)
        .map(|c| (c % GENRES.len(), crng.gen_range(0..GENRES.len())))
        .collect();
    let cluster_era: Vec<usize> = (0..nc).map(|_| crng.gen_range(0..ERAS.len())).collect();
    let mut rows = ItemRows::bare(items.ids().to_vec());
    let mut era = Vec::with_capacity(items.len());
    for i in 0..items.len() {
        let mut rng = rng_for(o.seed, 4, i as u64);
        let c = w.item_cluster[i] as usize;
        let (g1, g2) = cluster_genres[c];
        let mut g: Vec<String> = Vec::new();
        if rng.gen_bool(0.9) {
            g.push(GENRES[g1].to_string());
        }
        if rng.gen_bool(0.5) && g2 != g1 {
            g.push(GENRES[g2].to_string());
        }
        if rng.gen_bool(0.15) || g.is_empty() {
            let x = GENRES[rng.gen_range(0..GENRES.len())].to_string();
            if !g.contains(&x) {
                g.push(x);
            }
        }
        let n_words = rng.gen_range(2..=4);
        let mut title: Vec<String> = Vec::with_capacity(n_words + 1);
        for k in 0..n_words {
            let w = if k == 0 || rng.gen_bool(0.7) {
                words[c][rng.gen_range(0..WORDS_PER_CLUSTER)].clone()
            } else {
                GENERIC_WORDS[rng.gen_range(0..GENERIC_WORDS.len())].to_string()
            };
            title.push(w);
        }
        let mut t = title.join(" ");
        if let Some(f) = t.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        if rng.gen_bool(0.2) {
            t.push_str(&format!(" {}", rng.gen_range(2..=4)));
        }
        rows.titles[i] = Some(t);
        rows.genres[i] = g;
        let e = if rng.gen_bool(0.6) {
            cluster_era[c]
        } else {
            rng.gen_range(0..ERAS.len())
        };
        era.push(Some(ERAS[e].to_string()));
    }
    rows.categorical.push(("era".into(), era));
    rows
}

fn user_rows(o: &SynthOptions, w: &World, users: &Vocabulary) -> UserRows {
    let mut crng = rng_for(o.seed, 5, 0);
    let cluster_age: Vec<usize> = (0..o.clusters).map(|_| crng.gen_range(0..AGES.len())).collect();
    let (mut age, mut region) = (Vec::with_capacity(users.len()), Vec::with_capacity(users.len()));
    for u in 0..users.len() {
        let mut rng = rng_for(o.seed, 6, u as u64);
        let a = if rng.gen_bool(0.5) {
            cluster_age[w.user_primary[u] as usize]
        } else {
            rng.gen_range(0..AGES.len())
        };
        age.push(Some(AGES[a].to_string()));
        region.push(Some(format!("r{}", rng.gen_range(0..10))));
    }
    UserRows {
        ids: users.ids().to_vec(),
        categorical: vec![("age".into(), age), ("region".into(), region)],
    }
}

/// One user's interactions, sorted by (ts, item).
fn user_interactions(o: &SynthOptions, w: &World, u: usize, out: &mut Interactions) {
    let n = w.user_count[u] as usize;
    if n == 0 {
        return;
    }
    let mut rng = rng_for(o.seed, 7, u as u64);
    let span = o.span_secs as f64;
    let start = rng.gen::<f64>() * 0.7 * span;
    let len = (0.1 + 0.9 * rng.gen::<f64>()) * (span - start);
    let mut ts: Vec<i64> = (0..n)
        .map(|_| o.start_ts + (start + rng.gen::<f64>() * len) as i64)
        .collect();
    ts.sort_unstable();
    let mut seen: HashSet<u32, IdBuildHasher> = HashSet::with_capacity_and_hasher(n, Default::default());
    let mut rows: Vec<(i64, u32, f32)> = Vec::with_capacity(n);
    for &t in &ts {
        let progress = ((t - o.start_ts) as f64 / span).clamp(0.0, 1.0);
        let mut pick = (0, false);
        for _ in 0..4 {
            let in_cluster = rng.gen_bool(o.affinity);
            let item = if in_cluster {
                let c = if rng.gen_bool(o.drift * progress) {
                    w.user_secondary[u]
                } else {
                    w.user_primary[u]
                };
                w.per_cluster[c as usize].sample(&mut rng)
            } else {
                None
            }
            .or_else(|| w.global.sample(&mut rng))
            .unwrap_or(0);
            pick = (item, in_cluster);
            if !seen.contains(&item) {
                break;
            }
        }
        let (item, in_cluster) = pick;
        seen.insert(item);
        let liked = in_cluster
            || w.item_cluster[item as usize] == w.user_primary[u]
            || w.item_cluster[item as usize] == w.user_secondary[u];
        let rating = if liked {
            3 + u8::from(rng.gen_bool(0.7)) + u8::from(rng.gen_bool(0.5))
        } else {
            1 + u8::from(rng.gen_bool(0.5)) + u8::from(rng.gen_bool(0.3))
        };
        rows.push((t, item, rating as f32));
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    for (t, i, r) in rows {
        out.push(u as u32, i, r, t);
    }
}

/// Generates a synthetic dataset into `out` (atomically, like import).
pub fn synth(out: &Path, o: &SynthOptions, progress: &dyn Progress) -> Result<SynthReport> {
    validate(o)?;
    crate::dataset::check_replaceable(out)?;
    progress.start("building synthetic world", None);
    let w = build_world(o);
    let users = Vocabulary::from_ids((0..o.users).map(|u| format!("u{u}")));
    let items = Vocabulary::from_ids((0..o.items).map(|i| format!("i{i}")));
    progress.finish();

    let stage = StagingDir::new(out)?;
    let dir = stage.path();
    write_items(&dir.join(ITEMS_FILE), &item_rows(o, &w, &items))?;
    write_users(&dir.join(USERS_FILE), &user_rows(o, &w, &users))?;

    progress.start("generating interactions", Some(o.interactions));
    let mut writer = InteractionWriter::create(&dir.join(INTERACTIONS_FILE))?;
    const WAVE: u64 = 1 << 20;
    let nu = o.users as usize;
    let mut u0 = 0usize;
    let mut item_counts = vec![0u32; o.items as usize];
    while u0 < nu {
        // A wave of consecutive users holding about WAVE interactions.
        let mut u1 = u0;
        let mut total = 0u64;
        while u1 < nu && (total < WAVE || u1 == u0) {
            total += w.user_count[u1] as u64;
            u1 += 1;
        }
        let blocks: Vec<Interactions> = (u0..u1)
            .collect::<Vec<_>>()
            .par_chunks(256)
            .map(|us| {
                let mut x = Interactions::default();
                for &u in us {
                    user_interactions(o, &w, u, &mut x);
                }
                x
            })
            .collect();
        for b in &blocks {
            for &i in &b.item {
                item_counts[i as usize] += 1;
            }
            writer.write(&users, &items, b)?;
        }
        progress.inc(total);
        u0 = u1;
    }
    let written = writer.finish()?;
    progress.finish();

    let mut m = Manifest::new(DATASET_KIND, DATASET_FORMAT_VERSION);
    for f in [INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE] {
        m.add_file(dir, f)?;
    }
    let interacting_users = w.user_count.iter().filter(|&&c| c > 0).count() as u64;
    let interacting_items = item_counts.iter().filter(|&&c| c > 0).count() as u64;
    m.counts.insert("interactions".into(), written);
    m.counts.insert("users".into(), o.users as u64);
    m.counts.insert("items".into(), o.items as u64);
    m.counts.insert("interacting_users".into(), interacting_users);
    m.counts.insert("interacting_items".into(), interacting_items);
    m.counts.insert("user_rows".into(), o.users as u64);
    m.counts.insert("item_rows".into(), o.items as u64);
    m.extra = serde_json::json!({ "source": { "format": "synth" }, "synth": o });
    m.write(dir)?;
    stage.commit()?;
    // No serving tables here: they would mean reading the whole log back, and synth streams in
    // constant memory; `data split` (or `data serving`) writes them.
    Ok(SynthReport {
        interactions: written,
        users: o.users as u64,
        items: o.items as u64,
    })
}

/// The generator's own next-item distribution: what a perfect model of `synth`'s data would know.
///
/// A user's next interaction at time `t` comes from their current cluster with probability
/// `affinity` (the secondary one with probability `drift · progress(t)`), else from the whole
/// catalogue, and within either pool an item is drawn in proportion to its Zipf popularity. So
/// `P(i | u, t) = pop_i · (a·(1-s)·[c_i = P_u]/Z_P + a·s·[c_i = S_u]/Z_S + (1-a)/Z)`, and ranking by
/// it is the best any recommender can do on this data: the ceiling against which a model's recall,
/// and where its recommendations sit in the popularity ranking, are judged.
pub struct SynthTruth {
    options: SynthOptions,
    item_cluster: Vec<u32>,
    item_pop: Vec<f64>,
    user_primary: Vec<u32>,
    user_secondary: Vec<u32>,
    /// Per cluster, its items by descending popularity (ties by index); last, the whole catalogue.
    by_pop: Vec<Vec<u32>>,
    /// Per cluster, the sum of its items' popularity weights; last, the catalogue's.
    totals: Vec<f64>,
}

impl SynthTruth {
    /// Rebuilds the world `synth` generates with these options (the same options give the same
    /// clusters and popularity).
    pub fn new(o: &SynthOptions) -> Result<SynthTruth> {
        validate(o)?;
        let w = build_world(o);
        let nc = o.clusters as usize;
        let mut by_pop: Vec<Vec<u32>> = vec![Vec::new(); nc + 1];
        for (i, &c) in w.item_cluster.iter().enumerate() {
            by_pop[c as usize].push(i as u32);
            by_pop[nc].push(i as u32);
        }
        let pop = &w.item_pop;
        for list in &mut by_pop {
            list.sort_unstable_by(|&a, &b| pop[b as usize].total_cmp(&pop[a as usize]).then(a.cmp(&b)));
        }
        let totals = by_pop
            .iter()
            .map(|l| l.iter().map(|&i| pop[i as usize]).sum())
            .collect();
        Ok(SynthTruth {
            options: o.clone(),
            item_cluster: w.item_cluster,
            item_pop: w.item_pop,
            user_primary: w.user_primary,
            user_secondary: w.user_secondary,
            by_pop,
            totals,
        })
    }

    /// `P(item | user, ts)` under the generator, before the generator's re-draw of items the user
    /// already has (0 for an index outside the world).
    pub fn probability(&self, user: u32, item: u32, ts: i64) -> f64 {
        let (Some(&c), Some(&pop)) = (
            self.item_cluster.get(item as usize),
            self.item_pop.get(item as usize),
        ) else {
            return 0.0;
        };
        let Some((p, s)) = self.clusters_of(user) else {
            return 0.0;
        };
        let (a, sec) = self.mixture(ts);
        let nc = self.options.clusters as usize;
        let mut w = (1.0 - a) / self.totals[nc];
        if c == p {
            w += a * (1.0 - sec) / self.totals[p as usize];
        }
        if c == s {
            w += a * sec / self.totals[s as usize];
        }
        pop * w
    }

    /// The `k` most probable items for `user` at `ts` that `skip` does not exclude, most probable
    /// first (ties by index). Walks the user's two clusters and the catalogue in popularity order,
    /// so it costs about `k` plus the skipped items, not the catalogue size.
    pub fn top_k(&self, user: u32, ts: i64, k: usize, skip: &dyn Fn(u32) -> bool) -> Vec<u32> {
        let Some((p, s)) = self.clusters_of(user) else {
            return Vec::new();
        };
        let nc = self.options.clusters as usize;
        let mut cand: Vec<(f64, u32)> = Vec::new();
        for list in [
            &self.by_pop[p as usize],
            &self.by_pop[s as usize],
            &self.by_pop[nc],
        ] {
            // Within one list the probability falls with popularity, so its first k admissible
            // items hold every item of that list that can make the top k.
            for &i in list.iter().filter(|&&i| !skip(i)).take(k) {
                cand.push((self.probability(user, i, ts), i));
            }
        }
        cand.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        cand.dedup_by_key(|c| c.1);
        cand.into_iter().take(k).map(|c| c.1).collect()
    }

    /// The user's primary and secondary clusters.
    fn clusters_of(&self, user: u32) -> Option<(u32, u32)> {
        Some((
            *self.user_primary.get(user as usize)?,
            *self.user_secondary.get(user as usize)?,
        ))
    }

    /// `(affinity, share of in-cluster picks from the secondary cluster)` at `ts`.
    fn mixture(&self, ts: i64) -> (f64, f64) {
        let o = &self.options;
        let progress = ((ts - o.start_ts) as f64 / o.span_secs as f64).clamp(0.0, 1.0);
        (o.affinity, o.drift * progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthOptions {
        SynthOptions {
            users: 50,
            items: 400,
            interactions: 2_000,
            clusters: 4,
            seed: 3,
            ..SynthOptions::default()
        }
    }

    /// The top-k walk returns exactly the k most probable admissible items of a full scan.
    #[test]
    fn top_k_is_the_full_scan_ranking() {
        let o = small();
        let t = SynthTruth::new(&o).unwrap();
        let ts = o.start_ts + o.span_secs / 2;
        for u in 0..o.users {
            let skip = |i: u32| (i + u).is_multiple_of(7);
            let mut all: Vec<(f64, u32)> = (0..o.items)
                .filter(|&i| !skip(i))
                .map(|i| (t.probability(u, i, ts), i))
                .collect();
            all.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all.iter().take(25).map(|c| c.1).collect();
            assert_eq!(t.top_k(u, ts, 25, &skip), want, "user {u}");
        }
    }

    /// The probabilities are a distribution over the catalogue, and they are the generator's: the
    /// items a user was drawn most often sit in their primary cluster.
    #[test]
    fn probabilities_sum_to_one_and_match_the_generated_clusters() {
        let o = small();
        let t = SynthTruth::new(&o).unwrap();
        for u in [0, 7, 49] {
            let total: f64 = (0..o.items).map(|i| t.probability(u, i, o.start_ts)).sum();
            assert!((total - 1.0).abs() < 1e-9, "user {u}: {total}");
        }
        let w = build_world(&o);
        let mut in_primary = 0usize;
        for u in 0..o.users as usize {
            let mut out = Interactions::default();
            user_interactions(&o, &w, u, &mut out);
            in_primary += out
                .item
                .iter()
                .filter(|&&i| t.item_cluster[i as usize] == t.user_primary[u])
                .count();
        }
        // affinity 0.8 with drift up to 0.3, plus global picks landing in the cluster by chance.
        let share = in_primary as f64 / o.interactions as f64;
        assert!(
            share > 0.6 && share < 0.9,
            "share of picks in the primary cluster: {share}"
        );
    }
}
