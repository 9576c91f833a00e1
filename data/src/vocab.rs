//! String ids ⇄ dense `u32` indices. Ids stay strings at the edges (files, CLI, HTTP); models and
//! indexes work on dense indices. The out-of-vocabulary index is `len()`, so an embedding table has
//! `len() + 1` rows and the last one stands for every unknown id.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// foldhash (what hashbrown itself uses): fast on short ids and well mixed, where SipHash would
/// dominate dataset load time. Ids come from our own files, so hash flooding is not a concern; the
/// fixed seed keeps every run identical.
pub(crate) type IdBuildHasher = foldhash::fast::FixedState;

/// A bidirectional map between string ids and dense indices `0..len()`, in insertion order. Each
/// id is held once: the hash table stores indices into `ids` and compares through them (at 1 M
/// items that halves the strings a vocabulary allocates and frees).
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    ids: Vec<String>,
    index: hashbrown::HashTable<u32>,
}

impl PartialEq for Vocabulary {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids
    }
}
impl Eq for Vocabulary {}

fn hash_id(id: &str) -> u64 {
    use std::hash::BuildHasher;
    IdBuildHasher::default().hash_one(id)
}

impl Vocabulary {
    /// An empty vocabulary.
    pub fn new() -> Vocabulary {
        Vocabulary::default()
    }

    /// An empty vocabulary with room for `n` ids without rehashing.
    pub fn with_capacity(n: usize) -> Vocabulary {
        Vocabulary {
            ids: Vec::with_capacity(n),
            index: hashbrown::HashTable::with_capacity(n),
        }
    }

    /// Builds a vocabulary from ids in order; repeated ids keep their first index.
    pub fn from_ids<I, S>(ids: I) -> Vocabulary
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let it = ids.into_iter();
        let mut v = Vocabulary::with_capacity(it.size_hint().0);
        for id in it {
            v.insert(id.as_ref());
        }
        v
    }

    /// Builds a vocabulary owning `ids` (no copy); repeated ids keep their first index and are
    /// dropped.
    pub fn from_owned(ids: Vec<String>) -> Vocabulary {
        let mut v = Vocabulary::with_capacity(ids.len());
        for id in ids {
            v.insert_owned(id);
        }
        v
    }

    /// The index of `id`, adding it at the end if new.
    pub fn insert(&mut self, id: &str) -> u32 {
        match self.get(id) {
            Some(i) => i,
            None => self.push_new(id.to_string()),
        }
    }

    fn insert_owned(&mut self, id: String) -> u32 {
        match self.get(&id) {
            Some(i) => i,
            None => self.push_new(id),
        }
    }

    fn push_new(&mut self, id: String) -> u32 {
        let i = u32::try_from(self.ids.len()).expect("vocabulary larger than u32::MAX - 1");
        assert!(i < u32::MAX, "vocabulary larger than u32::MAX - 1");
        let ids = &self.ids;
        self.index
            .insert_unique(hash_id(&id), i, |&j| hash_id(&ids[j as usize]));
        self.ids.push(id);
        i
    }

    /// The index of `id`, if known.
    #[inline]
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index
            .find(hash_id(id), |&i| self.ids[i as usize] == id)
            .copied()
    }

    /// The index of `id`, or [`oov`](Self::oov) when unknown.
    #[inline]
    pub fn get_or_oov(&self, id: &str) -> u32 {
        self.get(id).unwrap_or(self.oov())
    }

    /// The string id at `index`. Panics if `index >= len()` (the OOV index has no string).
    #[inline]
    pub fn id(&self, index: u32) -> &str {
        &self.ids[index as usize]
    }

    /// Number of known ids.
    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no id is known.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The out-of-vocabulary index, equal to `len()`.
    #[inline]
    pub fn oov(&self) -> u32 {
        self.ids.len() as u32
    }

    /// All ids in index order.
    #[inline]
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

impl Serialize for Vocabulary {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.ids.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Vocabulary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let ids = Vec::<String>::deserialize(d)?;
        let n = ids.len();
        let v = Vocabulary::from_owned(ids);
        if v.len() != n {
            return Err(serde::de::Error::custom("vocabulary contains duplicate ids"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_indices_and_oov() {
        let mut v = Vocabulary::new();
        assert_eq!(v.insert("b"), 0);
        assert_eq!(v.insert("a"), 1);
        assert_eq!(v.insert("b"), 0);
        assert_eq!(v.len(), 2);
        assert_eq!(v.oov(), 2);
        assert_eq!(v.get("a"), Some(1));
        assert_eq!(v.get("zz"), None);
        assert_eq!(v.get_or_oov("zz"), 2);
        assert_eq!(v.id(1), "a");
        assert_eq!(v.ids(), &["b".to_string(), "a".to_string()]);
    }

    #[test]
    fn hash_spreads_sequential_ids_over_low_bits() {
        use std::hash::BuildHasher;
        let b = IdBuildHasher::default();
        let buckets: std::collections::HashSet<u64> = (0..4096)
            .map(|i| b.hash_one(format!("u{i}").as_str()) & 4095)
            .collect();
        // A uniform hash fills about 63% of 4096 buckets with 4096 keys; the bare Fx multiply
        // filled 32.
        assert!(buckets.len() > 2400, "{} buckets", buckets.len());
    }

    #[test]
    fn serde_is_a_list_and_roundtrips() {
        let v = Vocabulary::from_ids(["x", "y", "x", "z"]);
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(s, r#"["x","y","z"]"#);
        let back: Vocabulary = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.get("z"), Some(2));
        assert!(serde_json::from_str::<Vocabulary>(r#"["a","a"]"#).is_err());
    }
}
