//! What every run of a plan derives from the dataset, derived once and shared: the towers' feature
//! tables, the saved model's user histories, and the fit rows with their validation slice (split
//! again only when a run asks for another validation setting).

use std::cell::RefCell;
use std::rc::Rc;

use twotower_data::{Dataset, UserHistories};

use super::validation::{split_validation, Split};
use crate::config::{Config, TrainConfig};
use crate::error::{Error, Result};
use crate::features::{Csr, ItemFeatures, UserFeatures};

/// A dataset made ready for training.
pub(super) struct Prepared<'a> {
    pub(super) ds: &'a Dataset,
    pub(super) item_feats: ItemFeatures,
    pub(super) user_feats: UserFeatures,
    /// Each user's whole training part, oldest first: the saved model's histories (at serving and
    /// test time a user's history is everything before now, the validation slice included).
    pub(super) user_items: Csr,
    /// The split of the latest run. Runs of one setting follow each other in a plan (the
    /// candidates, then the refit and the members), so one is kept: no two splits live at once.
    split: RefCell<Option<(SplitKey, Rc<FitData>)>>,
}

/// The rows a run fits on, its validation slice, and the histories of the fit rows.
pub(super) struct FitData {
    pub(super) split: Split,
    pub(super) hist: UserHistories,
}

/// What a split depends on (without a validation slice: nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SplitKey {
    per_user: usize,
    max_users: usize,
    seed: u64,
}

impl<'a> Prepared<'a> {
    /// Features and histories of `ds.training()` for runs that share `config`'s item and user
    /// settings (a plan's runs differ only in loss and training settings).
    pub(super) fn new(ds: &'a Dataset, config: &Config) -> Result<Prepared<'a>> {
        let train = ds.training();
        if train.is_empty() {
            return Err(Error::Dataset {
                path: ds.dir.clone(),
                message: "no training interactions".into(),
            });
        }
        let n_users = ds.users.len();
        let full_hist = UserHistories::build(train, n_users);
        let mut user_items = Csr::default();
        for u in 0..n_users as u32 {
            user_items.push_row(full_hist.history(u).1);
        }
        Ok(Prepared {
            ds,
            item_feats: ItemFeatures::from_dataset(ds, config)?,
            user_feats: UserFeatures::from_dataset(ds, config)?,
            user_items,
            split: RefCell::new(None),
        })
    }

    /// The fit rows and validation slice that `tc` asks for.
    pub(super) fn fit(&self, tc: &TrainConfig) -> Rc<FitData> {
        let key = if tc.validation_per_user == 0 {
            SplitKey {
                per_user: 0,
                max_users: 0,
                seed: 0,
            }
        } else {
            SplitKey {
                per_user: tc.validation_per_user,
                max_users: tc.validation_max_users,
                seed: tc.seed,
            }
        };
        let mut cached = self.split.borrow_mut();
        if let Some((k, fit)) = cached.as_ref() {
            if *k == key {
                return fit.clone();
            }
        }
        // Dropped before the next is built.
        *cached = None;
        let n_users = self.ds.users.len();
        let split = split_validation(self.ds.training(), n_users, key.per_user, key.max_users, key.seed);
        let hist = UserHistories::build(&split.fit, n_users);
        let fit = Rc::new(FitData { split, hist });
        *cached = Some((key, fit.clone()));
        fit
    }
}
