//! The one place ids cross spaces: a request's string ids → dataset indexes (users, items, genres) →
//! model item rows, and index rows ⇄ dataset items for a backend that numbers its rows. A request is resolved
//! once into these typed ids; nothing downstream looks a string up again.

use super::catalog::Catalog;
use super::error::{RecError, Result};
pub use super::spaces::{DataItem, DataUser, Genre, ModelItem};
use twotower_index::ItemSearch;
use twotower_towers::Model;

/// Rejects ids no client should send: empty, or with control characters (tab, newline, NUL…).
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(RecError::BadParameter(format!("{what} id is empty")));
    }
    // The import's rule ([`twotower_data::id_problem`]): what a dataset cannot hold, no client sends.
    if twotower_data::id_problem(id).is_some() {
        return Err(RecError::BadParameter(format!(
            "{what} id {id:?} contains a control character (tab, newline, NUL…)"
        )));
    }
    Ok(())
}

/// Dataset item → model item row and dataset user → model user row, computed once per snapshot (a model can serve an updated catalog,
/// so the two vocabularies need not agree).
pub struct ModelRows {
    model_item: Vec<u32>,
    /// Dataset user → model user row (`u32::MAX`: not in the model).
    model_user: Vec<u32>,
}

impl ModelRows {
    /// Maps every dataset item through the model's vocabulary.
    pub fn new(model: &Model, catalog: &Catalog) -> ModelRows {
        let vocab = model.item_vocab();
        let items = &catalog.data().items;
        let users = &catalog.data().users;
        let user_vocab = model.user_vocab();
        ModelRows {
            model_item: (0..items.len() as u32)
                .map(|i| vocab.get_or_oov(items.id(i)))
                .collect(),
            model_user: (0..users.len() as u32)
                .map(|u| user_vocab.get(users.id(u)).unwrap_or(u32::MAX))
                .collect(),
        }
    }

    /// The model row of a dataset user, `None` when the model does not know the user.
    pub fn user(&self, user: DataUser) -> Option<u32> {
        match self.model_user.get(user.0 as usize).copied() {
            None | Some(u32::MAX) => None,
            Some(r) => Some(r),
        }
    }

    /// The model row of a dataset item.
    pub fn of(&self, item: DataItem) -> ModelItem {
        ModelItem(self.model_item[item.0 as usize])
    }
}

/// Resolves a request's string ids against one snapshot's catalog.
pub struct Resolver<'a> {
    catalog: &'a Catalog,
}

impl<'a> Resolver<'a> {
    /// A resolver over `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        Resolver { catalog }
    }

    /// The dataset user, `None` when unknown.
    pub fn user(&self, id: &str) -> Option<DataUser> {
        self.catalog.data().users.get(id).map(DataUser)
    }

    /// The dataset item a request names (unknown: [`RecError::UnknownItem`]).
    pub fn item(&self, id: &str) -> Result<DataItem> {
        self.catalog
            .data()
            .items
            .get(id)
            .map(DataItem)
            .ok_or_else(|| RecError::UnknownItem(id.to_string()))
    }

    /// Every item of a list; all unknown ones are named in one [`RecError::UnknownItems`].
    pub fn items(&self, ids: &[String]) -> Result<Vec<DataItem>> {
        for id in ids {
            check_id("item", id)?;
        }
        let items = &self.catalog.data().items;
        let unknown: Vec<String> = ids.iter().filter(|id| items.get(id).is_none()).cloned().collect();
        if !unknown.is_empty() {
            return Err(RecError::UnknownItems(unknown));
        }
        Ok(ids.iter().filter_map(|id| items.get(id)).map(DataItem).collect())
    }

    /// The genre of a filter, looked up once per request.
    pub fn genre(&self, name: Option<&str>) -> Result<Option<Genre>> {
        let Some(name) = name else { return Ok(None) };
        let vocab = &self.catalog.data().item_table.genres.vocab;
        vocab
            .get(name)
            .map(|g| Some(Genre(g)))
            .ok_or_else(|| RecError::UnknownGenre {
                name: name.to_string(),
                known: vocab.ids().to_vec(),
            })
    }
}

/// Index row ⇄ dataset item for one index version (tombstoned rows map to no item's live row).
pub struct RowMaps {
    /// Index row → dataset item (u32::MAX: an item the dataset does not know, added by `index add`).
    row_item: Vec<u32>,
    /// Dataset item → live index row (u32::MAX: not in the index).
    item_row: Vec<u32>,
}

impl RowMaps {
    /// Maps `index`'s rows onto `catalog`'s items; `None` for a backend that names items by id.
    pub fn new(index: &dyn ItemSearch, catalog: &Catalog) -> Option<RowMaps> {
        let ids = index.row_ids()?;
        let items = &catalog.data().items;
        let mut item_row = vec![u32::MAX; items.len()];
        let row_item: Vec<u32> = (0..ids.len() as u32)
            .map(|row| {
                let i = items.get(&ids[row as usize]).unwrap_or(u32::MAX);
                if i != u32::MAX && index.is_live_row(row) {
                    item_row[i as usize] = row;
                }
                i
            })
            .collect();
        Some(RowMaps { row_item, item_row })
    }

    /// The dataset item of an index row, `None` for an item the dataset does not know.
    pub fn item_of(&self, row: u32) -> Option<DataItem> {
        match self.row_item[row as usize] {
            u32::MAX => None,
            i => Some(DataItem(i)),
        }
    }

    /// The live index row of a dataset item.
    pub fn row_of(&self, item: DataItem) -> Option<u32> {
        match self.item_row.get(item.0 as usize).copied() {
            None | Some(u32::MAX) => None,
            Some(r) => Some(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_control_characters_or_empty_are_rejected() {
        assert!(check_id("user", "u1").is_ok());
        for bad in ["", "a\tb", "a\nb", "a\0b"] {
            let e = check_id("user", bad).unwrap_err();
            assert_eq!(e.http_status(), 400, "{bad:?}");
        }
    }
}
