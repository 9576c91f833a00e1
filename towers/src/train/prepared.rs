//! What every run of a plan derives from the dataset, derived once and shared: the towers' feature
//! tables, the users' histories (built once from the training rows, for the saved model, the
//! validation split and a run without a validation slice), and the fit rows with their validation
//! slice (split again only when a run asks for another validation setting).

use std::cell::RefCell;
use std::rc::Rc;

use twotower_data::{Dataset, UserHistories};

use super::validation::{split_validation, Split};
use super::warm::WarmStart;
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
    /// Every user's training interactions by time: the validation split reads each user's last
    /// ones, and a run that holds nothing out trains on exactly these histories.
    histories: Rc<UserHistories>,
    /// A warm start's window: which training rows are examples (histories keep every row).
    window: Option<WarmStart>,
    /// The split of the latest run. Runs of one setting follow each other in a plan (the
    /// candidates, then the refit and the members), so one is kept: no two splits live at once.
    split: RefCell<Option<(SplitKey, Rc<FitData>)>>,
}

/// The rows a run fits on, its validation slice, and the histories of the fit rows.
pub(super) struct FitData {
    pub(super) split: Split,
    /// The fit rows' histories: the dataset's own when no row was held out.
    pub(super) hist: Rc<UserHistories>,
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
    pub(super) fn new(ds: &'a Dataset, config: &Config, window: Option<&WarmStart>) -> Result<Prepared<'a>> {
        let train = ds.training();
        if train.is_empty() {
            return Err(Error::Dataset {
                path: ds.dir.clone(),
                message: "no training interactions".into(),
            });
        }
        let n_users = ds.users.len();
        let histories = UserHistories::build(train, n_users);
        let mut user_items = Csr::default();
        for u in 0..n_users as u32 {
            user_items.push_row(histories.history(u).1);
        }
        Ok(Prepared {
            ds,
            item_feats: ItemFeatures::from_dataset(ds, config)?,
            user_feats: UserFeatures::from_dataset(ds, config)?,
            user_items,
            histories: Rc::new(histories),
            window: window.filter(|w| w.train_from.is_some()).cloned(),
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
        let train = self.ds.training();
        let mut split = split_validation(train, &self.histories, key.per_user, key.max_users, key.seed);
        // With nothing held out the fit rows are the training rows, in their order: same histories.
        let hist = if split.fit.len() == train.len() {
            self.histories.clone()
        } else {
            Rc::new(UserHistories::build(&split.fit, self.ds.users.len()))
        };
        // A warm start's window keeps its examples only; the histories above keep every row, so an
        // example still sees the user's older items.
        if let Some(w) = &self.window {
            let f = &split.fit;
            let rows: Vec<usize> = (0..f.len())
                .filter(|&r| w.keeps(f.ts[r], f.user[r], f.item[r], tc.seed))
                .collect();
            split.fit = f.select(&rows);
        }
        let fit = Rc::new(FitData { split, hist });
        *cached = Some((key, fit.clone()));
        fit
    }
}
