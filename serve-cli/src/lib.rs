//! `twotower_cli`: the recommender every front end of the `twotower` binary renders (the query shell,
//! batch `recommend`, HTTP `serve`, `bench query`). The binary parses flags and prints; this library
//! loads, resolves, searches and reports typed errors.
#![warn(missing_docs)]

pub mod recommender;
