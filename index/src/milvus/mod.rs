//! Index versions on a Milvus server, for catalogues past one machine's memory or many serving
//! replicas over one catalogue: [`MilvusIndex`] mirrors [`crate::IndexDir`] (build, add, rebuild of
//! the live set, gc) with a collection per version and an alias as `CURRENT`; [`MilvusVersion`]
//! searches one version. Behind the `milvus` cargo feature (on by default).

mod backend;
mod client;
mod collection;
pub mod proto;
mod rows;
mod store;
mod version;

pub use client::{Client, ConnectOptions, MilvusError, MilvusUri, TOKEN_ENV};
pub use collection::{quote, Consistency, MilvusInfo, MAX_TOPK};
pub use rows::{GENRES_FIELD, ID_FIELD, TITLE_FIELD, VECTOR_FIELD};
pub use store::MilvusIndex;
pub use version::MilvusVersion;
