//! `twotower train|eval|embed` (seed file: the towers helper replaces it).
use clap::Args;
use twotower_data::progress::Progress;

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: std::path::PathBuf,
}
/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
}
/// Arguments of `embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
}
/// Trains a model.
pub fn train(a: TrainArgs, _p: &dyn Progress) -> anyhow::Result<()> {
    anyhow::bail!("not built yet: {a:?}")
}
/// Evaluates a model.
pub fn eval(a: EvalArgs, _p: &dyn Progress) -> anyhow::Result<()> {
    anyhow::bail!("not built yet: {a:?}")
}
/// Writes embeddings.
pub fn embed(a: EmbedArgs, _p: &dyn Progress) -> anyhow::Result<()> {
    anyhow::bail!("not built yet: {a:?}")
}
