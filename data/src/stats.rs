//! `data stats`: the numbers to look at before training: sizes, density, how interactions spread
//! over users and items, the most popular items, the time range and the split.

use std::fmt;

use serde::Serialize;

use crate::dataset::Dataset;

/// Distribution summary of a count per user or per item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Smallest.
    pub min: u64,
    /// 25th percentile.
    pub p25: u64,
    /// Median.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Quantiles {
    /// Summarises `values` (need not be sorted). All zero when empty.
    pub fn of(values: &[u32]) -> Quantiles {
        if values.is_empty() {
            return Quantiles {
                min: 0,
                p25: 0,
                p50: 0,
                p75: 0,
                p90: 0,
                p99: 0,
                max: 0,
                mean: 0.0,
            };
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as u64;
        Quantiles {
            min: v[0] as u64,
            p25: q(0.25),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            max: *v.last().expect("non-empty") as u64,
            mean: v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64,
        }
    }
}

/// A popular item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopItem {
    /// Item id.
    pub item: String,
    /// Title, when known.
    pub title: Option<String>,
    /// Number of interactions.
    pub count: u64,
}

/// Summary statistics of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// All interactions.
    pub interactions: u64,
    /// Users in the vocabulary (with or without interactions).
    pub users: u64,
    /// Items in the vocabulary (catalog, including cold items).
    pub items: u64,
    /// Users with at least one interaction.
    pub interacting_users: u64,
    /// Items with at least one interaction.
    pub interacting_items: u64,
    /// interactions / (interacting users × interacting items).
    pub density: f64,
    /// Interactions per interacting user.
    pub per_user: Quantiles,
    /// Interactions per interacting item.
    pub per_item: Quantiles,
    /// Most interacted items, most first.
    pub top_items: Vec<TopItem>,
    /// Earliest and latest timestamp.
    pub time_range: Option<(i64, i64)>,
    /// Smallest, largest and mean weight.
    pub weight_range: Option<(f32, f32, f64)>,
    /// (train, test) sizes after `data split`.
    pub split: Option<(u64, u64)>,
    /// Item and user feature columns with their number of distinct values.
    pub features: Vec<(String, u64)>,
    /// The dataset fingerprint.
    pub fingerprint: String,
}

impl Stats {
    /// Computes statistics of a loaded dataset, listing `top_k` popular items.
    pub fn of(ds: &Dataset, top_k: usize) -> Stats {
        let x = &ds.interactions;
        let uc = x.user_counts(ds.users.len());
        let ic = x.item_counts(ds.items.len());
        let u_nz: Vec<u32> = uc.iter().copied().filter(|&c| c > 0).collect();
        let i_nz: Vec<u32> = ic.iter().copied().filter(|&c| c > 0).collect();
        let mut order: Vec<u32> = (0..ic.len() as u32).filter(|&i| ic[i as usize] > 0).collect();
        order.sort_unstable_by(|&a, &b| ic[b as usize].cmp(&ic[a as usize]).then(a.cmp(&b)));
        let top_items = order
            .iter()
            .take(top_k)
            .map(|&i| TopItem {
                item: ds.items.id(i).to_string(),
                title: ds.item_table.titles[i as usize].clone(),
                count: ic[i as usize] as u64,
            })
            .collect();
        let time_range = x.ts.iter().copied().min().zip(x.ts.iter().copied().max());
        let weight_range = if x.is_empty() {
            None
        } else {
            let mn = x.weight.iter().copied().fold(f32::INFINITY, f32::min);
            let mx = x.weight.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = x.weight.iter().map(|&w| w as f64).sum::<f64>() / x.len() as f64;
            Some((mn, mx, mean))
        };
        let denom = u_nz.len() as f64 * i_nz.len() as f64;
        let mut features: Vec<(String, u64)> = vec![
            ("item genres".into(), ds.item_table.genres.vocab.len() as u64),
            (
                "item title tokens".into(),
                ds.item_table.title_tokens.vocab.len() as u64,
            ),
        ];
        for c in &ds.item_table.categorical {
            features.push((format!("item {}", c.name), c.vocab.len() as u64));
        }
        for c in &ds.user_table.categorical {
            features.push((format!("user {}", c.name), c.vocab.len() as u64));
        }
        Stats {
            interactions: x.len() as u64,
            users: ds.users.len() as u64,
            items: ds.items.len() as u64,
            interacting_users: u_nz.len() as u64,
            interacting_items: i_nz.len() as u64,
            density: if denom > 0.0 { x.len() as f64 / denom } else { 0.0 },
            per_user: Quantiles::of(&u_nz),
            per_item: Quantiles::of(&i_nz),
            top_items,
            time_range,
            weight_range,
            split: ds
                .train
                .as_ref()
                .zip(ds.test.as_ref())
                .map(|(a, b)| (a.len() as u64, b.len() as u64)),
            features,
            fingerprint: ds.fingerprint(),
        }
    }
}

/// A timestamp for people: the UTC date-time for epoch seconds in years 0–9999, the bare number
/// otherwise (a log without times holds row positions; a wrong unit gives huge values). Never panics.
fn fmt_time(ts: i64) -> String {
    crate::import::format_epoch_seconds(ts)
}

impl fmt::Display for Quantiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {}  p25 {}  median {}  p75 {}  p90 {}  p99 {}  max {}  (mean {:.1})",
            self.min, self.p25, self.p50, self.p75, self.p90, self.p99, self.max, self.mean
        )
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "interactions       {}", self.interactions)?;
        writeln!(
            f,
            "users              {} ({} with interactions)",
            self.users, self.interacting_users
        )?;
        writeln!(
            f,
            "items              {} ({} with interactions)",
            self.items, self.interacting_items
        )?;
        writeln!(f, "density            {:.4}%", self.density * 100.0)?;
        writeln!(f, "per user           {}", self.per_user)?;
        writeln!(f, "per item           {}", self.per_item)?;
        if let Some((a, b)) = self.time_range {
            writeln!(f, "time range         {} .. {}", fmt_time(a), fmt_time(b))?;
        }
        if let Some((mn, mx, mean)) = self.weight_range {
            writeln!(f, "weight             {mn} .. {mx} (mean {mean:.2})")?;
        }
        match self.split {
            Some((tr, te)) => writeln!(f, "split              train {tr}, test {te}")?,
            None => writeln!(f, "split              none (run `twotower data split`)")?,
        }
        for (name, n) in &self.features {
            writeln!(f, "feature            {name}: {n} values")?;
        }
        writeln!(f, "fingerprint        {}", self.fingerprint)?;
        writeln!(f, "top items:")?;
        for (k, t) in self.top_items.iter().enumerate() {
            writeln!(
                f,
                "  {:>3}. {:<8} {:>7}  {}",
                k + 1,
                t.item,
                t.count,
                t.title.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_time;

    #[test]
    fn times_print_for_any_value() {
        assert_eq!(fmt_time(978_300_760), "2000-12-31T22:12:40Z");
        // Milliseconds taken for seconds, row positions, the extremes: printed, never a panic.
        assert_eq!(fmt_time(1_609_459_200_000), "1609459200000 (epoch seconds)");
        assert_eq!(fmt_time(3), "1970-01-01T00:00:03Z");
        for v in [i64::MIN, i64::MAX, -1, 253_402_300_800] {
            assert!(!fmt_time(v).is_empty());
        }
    }
}
