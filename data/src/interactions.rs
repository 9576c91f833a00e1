//! Interaction logs as dense columns, and per-user time-ordered histories (the user tower's
//! "recent items strictly before the target" feature).

/// Interactions in column form; row `r` is `(user[r], item[r], weight[r], ts[r])` with dense indices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interactions {
    /// Dense user index per row.
    pub user: Vec<u32>,
    /// Dense item index per row.
    pub item: Vec<u32>,
    /// Weight per row (the rating for explicit feedback, 1.0 otherwise).
    pub weight: Vec<f32>,
    /// Timestamp per row (seconds since the epoch, or the record's position when the source has no time).
    pub ts: Vec<i64>,
}

impl Interactions {
    /// Empty columns with room for `n` rows.
    pub fn with_capacity(n: usize) -> Interactions {
        Interactions {
            user: Vec::with_capacity(n),
            item: Vec::with_capacity(n),
            weight: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
        }
    }

    /// Number of rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// True when there are no rows.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// Appends one row.
    #[inline]
    pub fn push(&mut self, user: u32, item: u32, weight: f32, ts: i64) {
        self.user.push(user);
        self.item.push(item);
        self.weight.push(weight);
        self.ts.push(ts);
    }

    /// Appends every row of `other`.
    pub fn extend(&mut self, other: &Interactions) {
        self.user.extend_from_slice(&other.user);
        self.item.extend_from_slice(&other.item);
        self.weight.extend_from_slice(&other.weight);
        self.ts.extend_from_slice(&other.ts);
    }

    /// The rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Interactions {
        Interactions {
            user: rows.iter().map(|&r| self.user[r]).collect(),
            item: rows.iter().map(|&r| self.item[r]).collect(),
            weight: rows.iter().map(|&r| self.weight[r]).collect(),
            ts: rows.iter().map(|&r| self.ts[r]).collect(),
        }
    }

    /// Number of rows per user index, for `n_users` users (indices ≥ n_users are ignored).
    pub fn user_counts(&self, n_users: usize) -> Vec<u32> {
        let mut c = vec![0u32; n_users];
        for &u in &self.user {
            if let Some(x) = c.get_mut(u as usize) {
                *x += 1;
            }
        }
        c
    }

    /// Number of rows per item index, for `n_items` items (indices ≥ n_items are ignored).
    pub fn item_counts(&self, n_items: usize) -> Vec<u32> {
        let mut c = vec![0u32; n_items];
        for &i in &self.item {
            if let Some(x) = c.get_mut(i as usize) {
                *x += 1;
            }
        }
        c
    }
}

/// Every user's interactions sorted by (ts, item), in CSR form, so "the items this user saw before
/// time t" is a binary search, not a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHistories {
    offsets: Vec<u64>,
    ts: Vec<i64>,
    items: Vec<u32>,
}

impl UserHistories {
    /// Groups `inter` by user (indices `0..n_users`; rows with a larger user index are skipped).
    pub fn build(inter: &Interactions, n_users: usize) -> UserHistories {
        let counts = inter.user_counts(n_users);
        let mut offsets = Vec::with_capacity(n_users + 1);
        offsets.push(0u64);
        let mut acc = 0u64;
        for &c in &counts {
            acc += c as u64;
            offsets.push(acc);
        }
        let total = acc as usize;
        let mut cursor: Vec<u64> = offsets[..n_users].to_vec();
        let mut ts = vec![0i64; total];
        let mut items = vec![0u32; total];
        for r in 0..inter.len() {
            let u = inter.user[r] as usize;
            if u >= n_users {
                continue;
            }
            let p = cursor[u] as usize;
            ts[p] = inter.ts[r];
            items[p] = inter.item[r];
            cursor[u] += 1;
        }
        let mut pairs: Vec<(i64, u32)> = Vec::new();
        for u in 0..n_users {
            let (a, b) = (offsets[u] as usize, offsets[u + 1] as usize);
            let (t, it) = (&mut ts[a..b], &mut items[a..b]);
            let sorted = t
                .windows(2)
                .zip(it.windows(2))
                .all(|(tw, iw)| (tw[0], iw[0]) <= (tw[1], iw[1]));
            if sorted {
                continue;
            }
            pairs.clear();
            pairs.extend(t.iter().copied().zip(it.iter().copied()));
            pairs.sort_unstable();
            for (k, &(pt, pi)) in pairs.iter().enumerate() {
                t[k] = pt;
                it[k] = pi;
            }
        }
        UserHistories { offsets, ts, items }
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The CSR's arrays: offsets (`n_users + 1`), times and items.
    pub fn into_parts(self) -> (Vec<u64>, Vec<i64>, Vec<u32>) {
        (self.offsets, self.ts, self.items)
    }

    /// User `u`'s timestamps and items, sorted by (ts, item). Empty for an out-of-range user.
    pub fn history(&self, u: u32) -> (&[i64], &[u32]) {
        let u = u as usize;
        if u >= self.n_users() {
            return (&[], &[]);
        }
        let (a, b) = (self.offsets[u] as usize, self.offsets[u + 1] as usize);
        (&self.ts[a..b], &self.items[a..b])
    }

    /// User `u`'s items with a timestamp strictly earlier than `ts`, most recent last.
    pub fn before(&self, u: u32, ts: i64) -> &[u32] {
        let (t, it) = self.history(u);
        let n = t.partition_point(|&x| x < ts);
        &it[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_sorted_and_before_is_strict() {
        let mut x = Interactions::default();
        x.push(1, 5, 1.0, 30);
        x.push(0, 2, 1.0, 10);
        x.push(1, 3, 1.0, 10);
        x.push(1, 1, 1.0, 30);
        x.push(1, 9, 1.0, 20);
        let h = UserHistories::build(&x, 3);
        assert_eq!(h.history(1), (&[10, 20, 30, 30][..], &[3, 9, 1, 5][..]));
        assert_eq!(h.before(1, 30), &[3, 9]);
        assert_eq!(h.before(1, 31), &[3, 9, 1, 5]);
        assert!(h.before(1, 10).is_empty());
        assert_eq!(h.history(0).1, &[2]);
        assert!(h.history(2).0.is_empty());
        assert!(h.history(99).0.is_empty());
    }
}
