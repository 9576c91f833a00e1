//! `twotower index build|rebuild|add|check|gc --index milvus://HOST:PORT/NAME`: the same commands
//! and live-set rules as for an index directory, with the versions kept as Milvus collections
//! (see `twotower_index::milvus`). Titles and genres go with each vector so that Milvus can filter.

use crate::index_cmd::{
    check_cmd, embed_dataset, load_dataset, load_model, params_line, print_add, print_gc, print_not_live,
    rebuild_hint, warn_unencodable, AddArgs, BuildArgs, IndexCommand,
};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;
use twotower_data::progress::Progress;
use twotower_data::Dataset;
use twotower_index::milvus::{ItemRows, MilvusChecked, MilvusIndex};
use twotower_index::{Checked, HnswParams};
use twotower_towers::Model;

fn open(addr: &str) -> Result<MilvusIndex> {
    Ok(MilvusIndex::open(addr)?)
}

/// `ids` with their vectors, titles and genres from `ds` (none for ids `ds` does not have).
fn with_attrs(ds: &Dataset, ids: Vec<String>, vectors: Vec<f32>) -> ItemRows {
    let t = &ds.item_table;
    let (mut titles, mut genres) = (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
    for id in &ids {
        match ds.items.get(id) {
            Some(r) => {
                let r = r as usize;
                titles.push(t.titles[r].clone().unwrap_or_default());
                let g = &t.genres;
                genres.push(
                    g.values[g.offsets[r] as usize..g.offsets[r + 1] as usize]
                        .iter()
                        .map(|&v| g.vocab.id(v).to_string())
                        .collect(),
                );
            }
            None => {
                titles.push(String::new());
                genres.push(Vec::new());
            }
        }
    }
    ItemRows {
        ids,
        vectors,
        titles,
        genres,
    }
}

/// The dataset a model was trained on (its titles and genres go into the collection).
fn model_dataset(model: &Model) -> Result<Dataset> {
    let dir = Path::new(&model.meta().dataset_dir);
    Dataset::load(dir).with_context(|| {
        format!(
            "loading the model's dataset {} for item titles and genres (pass --data to use another copy)",
            dir.display()
        )
    })
}

/// Every item of the model's catalogue.
fn model_catalogue(model: &Model) -> Result<ItemRows> {
    let ds = model_dataset(model)?;
    Ok(with_attrs(
        &ds,
        model.item_vocab().ids().to_vec(),
        model.item_embeddings()?,
    ))
}

/// The encodable items of `--data`, embedded; `None` without `--data`.
fn embed_data(model: &Model, data: Option<&Path>, only: &[String]) -> Result<Option<(ItemRows, usize)>> {
    let Some(d) = data else { return Ok(None) };
    let ds = load_dataset(d)?;
    let e = embed_dataset(model, &ds, d, only)?;
    warn_unencodable(&e, d);
    let left_out = e.unencodable.len();
    Ok(Some((with_attrs(&ds, e.ids, e.vectors), left_out)))
}

/// `index build` (and `rebuild --reset`): the whole catalogue into a new collection.
fn build(a: &BuildArgs, addr: &str, reset: bool, progress: &dyn Progress) -> Result<()> {
    let index = open(addr)?;
    let base = if reset {
        index
            .open_current(None)
            .with_context(|| format!("{} has no index to rebuild (use `index build`)", index.uri()))?
            .info()
            .hnsw
    } else {
        HnswParams::default()
    };
    let params = a.graph.resolve(base);
    let model = load_model(&a.model)?;
    let t = Instant::now();
    progress.start("embedding items", None);
    let (rows, left_out) = match embed_data(&model, a.data.as_deref(), &[])? {
        Some((rows, left_out)) => {
            if rows.is_empty() {
                bail!(
                    "none of the items of the dataset can be encoded by the model {}",
                    a.model.display()
                );
            }
            (rows, left_out)
        }
        None => (model_catalogue(&model)?, 0),
    };
    progress.finish();
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = index.build_version(&rows, model.dim(), params, model.fingerprint(), progress)?;
    println!(
        "index version {v} of {} items{} (d={}, {}) in {} (collection {}, alias {} moved to it): \
         embedding {embed_s:.2} s, Milvus insert + index + load {:.2} s",
        rows.len(),
        if left_out > 0 {
            format!(", {left_out} not encodable left out")
        } else {
            String::new()
        },
        model.dim(),
        params_line(params),
        index.uri(),
        index.collection(v),
        index.uri().name,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `index rebuild`: the live set of the served collection into a new one.
fn rebuild(a: &BuildArgs, addr: &str, progress: &dyn Progress) -> Result<()> {
    let index = open(addr)?;
    let cur = index
        .open_current(None)
        .with_context(|| format!("{} has no index to rebuild (use `index build`)", index.uri()))?;
    let params = a.graph.resolve(cur.info().hnsw);
    let model = load_model(&a.model)?;
    let same_model = cur.info().model_fingerprint == model.fingerprint();
    drop(cur);
    let t = Instant::now();
    progress.start("embedding items", None);
    let mut rows = embed_data(&model, a.data.as_deref(), &[])?
        .map(|r| r.0)
        .unwrap_or_default();
    if !same_model {
        // Another model: its own catalogue for every item --data does not have.
        let given: std::collections::HashSet<String> = rows.ids.iter().cloned().collect();
        let all = model_catalogue(&model)?;
        let dim = model.dim();
        for r in 0..all.len() {
            if !given.contains(&all.ids[r]) {
                rows.ids.push(all.ids[r].clone());
                rows.vectors
                    .extend_from_slice(&all.vectors[r * dim..(r + 1) * dim]);
                rows.titles.push(all.titles[r].clone());
                rows.genres.push(all.genres[r].clone());
            }
        }
    }
    progress.finish();
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = index
        .rebuild_live(&rows, model.dim(), Some(params), model.fingerprint(), progress)
        .map_err(rebuild_hint)?;
    println!(
        "index version {} of {} items, the live set of version {} ({} re-embedded, {} kept their vectors) \
         (d={}, {}) in {} (collection {}, alias moved): embedding {embed_s:.2} s, Milvus {:.2} s",
        r.version,
        r.rows,
        r.parent,
        r.reembedded,
        r.kept,
        model.dim(),
        params_line(params),
        index.uri(),
        index.collection(r.version),
        t.elapsed().as_secs_f64()
    );
    print_not_live(&r);
    Ok(())
}

/// `index add`: upserts and deletes in the served collection.
fn add(a: &AddArgs, addr: &str, progress: &dyn Progress) -> Result<()> {
    let index = open(addr)?;
    let model = load_model(&a.model)?;
    let (rows, left_out) = embed_data(&model, a.data.as_deref(), &a.only)?.unwrap_or_default();
    if rows.is_empty() && a.remove.is_empty() {
        bail!("nothing to add or remove (no item of --data can be encoded by the model)");
    }
    let r = index.add_items(&rows, model.dim(), &a.remove, model.fingerprint(), progress)?;
    let collection = index.collection(r.version);
    print_add(
        &r,
        left_out,
        &format!(" ({collection}, upserted in place)"),
        &format!(" ({collection}) unchanged"),
    );
    Ok(())
}

/// An `index` subcommand on the Milvus index at `addr`.
pub fn run(cmd: IndexCommand, addr: &str, progress: &dyn Progress) -> Result<()> {
    match cmd {
        IndexCommand::Build(a) => build(&a, addr, false, progress),
        IndexCommand::Rebuild(a) if a.reset => build(&a.build, addr, true, progress),
        IndexCommand::Rebuild(a) => rebuild(&a.build, addr, progress),
        IndexCommand::Add(a) => add(&a, addr, progress),
        // check reads the collection back through `open_checked`, beside the directory case.
        IndexCommand::Check(a) => check_cmd(a, progress),
        IndexCommand::Gc(a) => print_gc(&open(addr)?.gc(a.keep)?),
    }
}

/// `index check`: the served collection, read back beside an exact index of its rows.
pub fn open_checked(
    addr: &str,
    model: &Model,
    progress: &dyn Progress,
) -> Result<(Box<dyn Checked>, String)> {
    let t = Instant::now();
    let index = open(addr)?;
    let version = index.open_current(Some(model.fingerprint()))?;
    let server = index.client().server_version().unwrap_or_else(|_| "?".into());
    let checked = MilvusChecked::new(version, progress)?;
    let v = checked.version();
    let header = format!(
        "index version {} of {} (collection {}, Milvus {server}): {} rows, m={}, ef_construction={}, \
         default ef={}; read back in {:.2} s; queries/s are one query per call over gRPC",
        v.version(),
        index.uri(),
        v.collection(),
        v.rows(),
        v.info().hnsw.m,
        v.info().hnsw.ef_construction,
        v.info().hnsw.ef_search,
        t.elapsed().as_secs_f64()
    );
    Ok((Box::new(checked), header))
}
