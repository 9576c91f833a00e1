//! `twotower data …` (seed file: the data helper replaces it).
use clap::Subcommand;
use twotower_data::progress::Progress;

/// Dataset commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print dataset statistics.
    Stats {
        /// Dataset directory.
        #[arg(long)]
        data: std::path::PathBuf,
    },
}

/// Runs a `data` subcommand.
pub fn run(cmd: DataCommand, _progress: &dyn Progress) -> anyhow::Result<()> {
    anyhow::bail!("not built yet: {cmd:?}")
}
