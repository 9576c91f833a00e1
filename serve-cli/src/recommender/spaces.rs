//! The recommender's id spaces as types, so a dataset item is never taken for a model row or an index
//! row. Conversions between them live in `ids.rs`.

/// A user of the dataset (its row in the dataset's user vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataUser(pub u32);

/// An item of the dataset (its row in the dataset's item vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataItem(pub u32);

/// An item's row in the model's item vocabulary (the OOV row when the model does not know it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelItem(pub u32);

/// A genre of the catalog (its row in the genre vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Genre(pub u32);
