//! [`LiveIds`]: the live row of each item id of a version, as a hash table of rows that compares
//! through the version's own id list, so each id string is held once (at 1 M rows a map of owned
//! strings doubled the ids' memory and the time to open).

use hashbrown::HashTable;

/// Live item id → row, over an id list the caller owns (row `r`'s id is `ids[r]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveIds {
    table: HashTable<u32>,
}

fn hash(id: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(id)
}

impl LiveIds {
    /// Room for `n` ids.
    pub(crate) fn with_capacity(n: usize) -> LiveIds {
        LiveIds {
            table: HashTable::with_capacity(n),
        }
    }

    /// The live row of `id`.
    pub(crate) fn get(&self, ids: &[String], id: &str) -> Option<u32> {
        self.table
            .find(hash(id), |&r| ids.get(r as usize).is_some_and(|s| s == id))
            .copied()
    }

    /// Makes `row` (whose id is `ids[row]`) the live row of its id; returns the row it replaces.
    pub(crate) fn insert(&mut self, ids: &[String], row: u32) -> Option<u32> {
        let id = ids[row as usize].as_str();
        let h = hash(id);
        match self.table.find_mut(h, |&r| ids[r as usize] == id) {
            Some(slot) => Some(std::mem::replace(slot, row)),
            None => {
                self.table.insert_unique(h, row, |&r| hash(&ids[r as usize]));
                None
            }
        }
    }

    /// Takes `id` out of the live set; returns its row.
    pub(crate) fn remove(&mut self, ids: &[String], id: &str) -> Option<u32> {
        match self
            .table
            .find_entry(hash(id), |&r| ids.get(r as usize).is_some_and(|s| s == id))
        {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }

    /// Number of live ids.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}
