//! The flags every serving command shares (`--model`, `--index`, `--data`), turned into the library's
//! [`RecommenderConfig`].

use anyhow::Result;
use std::path::PathBuf;
use twotower_cli::recommender::{IndexLocation, Recommender, RecommenderConfig};

/// Where a recommender's parts live.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Model directory (from `twotower train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory (from `twotower index build`), or a Milvus index as
    /// `milvus://HOST:PORT/NAME` (credentials from TWOTOWER_MILVUS_TOKEN); rebuilds are followed
    /// while running.
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: IndexLocation,
    /// Dataset directory for titles, genres and histories, when not the one the model was trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl EngineArgs {
    /// Loads the recommender these flags name.
    pub fn open(&self) -> Result<Recommender> {
        Ok(Recommender::open(RecommenderConfig {
            model: self.model.clone(),
            index: self.index.clone(),
            data: self.data.clone(),
        })?)
    }
}
