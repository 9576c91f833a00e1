//! The part of Milvus's gRPC API (`milvus.proto.milvus.MilvusService`, from milvus-io/milvus-proto)
//! that twotower speaks: collections, aliases, indexes, insert/upsert/delete, flush, query, search.
//!
//! The messages are declared here with prost's derive instead of generated from the 5,000 lines of
//! `.proto` files: the service has about 150 RPCs and we call 20, so generating all of it would cost
//! build time (and a `protoc`) for code that is never used. Field numbers are copied from the
//! published protos; fields we do not send are left out, and fields the server sends that are not
//! declared are skipped by prost when decoding. Both Milvus Lite 3.x and Milvus 2.3 are exercised by
//! the integration tests (`serve-cli/tests/milvus_cli.rs`). The published protos of the release CI's
//! Milvus Lite speaks are vendored in `index/proto/milvus/`, and the `upstream` test checks every
//! name, number, type and constant here against them, with no server.
#![allow(missing_docs)]

use std::collections::HashMap;

/// `common.DataType`.
pub mod data_type {
    pub const INT64: i32 = 5;
    pub const VARCHAR: i32 = 21;
    pub const ARRAY: i32 = 22;
    pub const FLOAT_VECTOR: i32 = 101;
}

/// `common.ConsistencyLevel`.
pub mod consistency {
    pub const STRONG: i32 = 0;
    pub const BOUNDED: i32 = 2;
}

/// `common.IndexState`.
pub mod index_state {
    pub const FINISHED: i32 = 3;
    pub const FAILED: i32 = 4;
}

/// `common.LoadState`.
pub mod load_state {
    pub const NOT_EXIST: i32 = 0;
    pub const NOT_LOAD: i32 = 1;
    pub const LOADED: i32 = 3;
}

/// `common.PlaceholderType::FloatVector`.
pub const PLACEHOLDER_FLOAT_VECTOR: i32 = 101;
/// `common.DslType::BoolExprV1`.
pub const DSL_BOOL_EXPR: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// Deprecated `ErrorCode` (0 = success); older servers set only this.
    #[prost(int32, tag = "1")]
    pub error_code: i32,
    #[prost(string, tag = "2")]
    pub reason: String,
    /// The newer error code (0 = success).
    #[prost(int32, tag = "3")]
    pub code: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValuePair {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A `KeyValuePair` from two strings.
pub fn kv(key: &str, value: impl Into<String>) -> KeyValuePair {
    KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

// ---- schema ------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldSchema {
    #[prost(int64, tag = "1")]
    pub field_id: i64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(bool, tag = "3")]
    pub is_primary_key: bool,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(int32, tag = "5")]
    pub data_type: i32,
    #[prost(message, repeated, tag = "6")]
    pub type_params: Vec<KeyValuePair>,
    #[prost(bool, tag = "8")]
    pub auto_id: bool,
    #[prost(int32, tag = "10")]
    pub element_type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CollectionSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(message, repeated, tag = "4")]
    pub fields: Vec<FieldSchema>,
    #[prost(bool, tag = "5")]
    pub enable_dynamic_field: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LongArray {
    #[prost(int64, repeated, tag = "1")]
    pub data: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FloatArray {
    #[prost(float, repeated, tag = "1")]
    pub data: Vec<f32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StringArray {
    #[prost(string, repeated, tag = "1")]
    pub data: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayArray {
    #[prost(message, repeated, tag = "1")]
    pub data: Vec<ScalarField>,
    #[prost(int32, tag = "2")]
    pub element_type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScalarField {
    #[prost(oneof = "scalar_field::Data", tags = "3, 6, 8")]
    pub data: Option<scalar_field::Data>,
}

pub mod scalar_field {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "3")]
        LongData(super::LongArray),
        #[prost(message, tag = "6")]
        StringData(super::StringArray),
        #[prost(message, tag = "8")]
        ArrayData(super::ArrayArray),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VectorField {
    #[prost(int64, tag = "1")]
    pub dim: i64,
    #[prost(oneof = "vector_field::Data", tags = "2")]
    pub data: Option<vector_field::Data>,
}

pub mod vector_field {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "2")]
        FloatVector(super::FloatArray),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldData {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub field_name: String,
    #[prost(oneof = "field_data::Field", tags = "3, 4")]
    pub field: Option<field_data::Field>,
    #[prost(int64, tag = "5")]
    pub field_id: i64,
}

pub mod field_data {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Field {
        #[prost(message, tag = "3")]
        Scalars(super::ScalarField),
        #[prost(message, tag = "4")]
        Vectors(super::VectorField),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Ids {
    #[prost(oneof = "ids::IdField", tags = "1, 2")]
    pub id_field: Option<ids::IdField>,
}

pub mod ids {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum IdField {
        #[prost(message, tag = "1")]
        IntId(super::LongArray),
        #[prost(message, tag = "2")]
        StrId(super::StringArray),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResultData {
    #[prost(int64, tag = "1")]
    pub num_queries: i64,
    #[prost(int64, tag = "2")]
    pub top_k: i64,
    #[prost(float, repeated, tag = "4")]
    pub scores: Vec<f32>,
    #[prost(message, optional, tag = "5")]
    pub ids: Option<Ids>,
    /// Hits per query (a query may have fewer than `top_k`).
    #[prost(int64, repeated, tag = "6")]
    pub topks: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PlaceholderValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(int32, tag = "2")]
    pub r#type: i32,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub values: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PlaceholderGroup {
    #[prost(message, repeated, tag = "1")]
    pub placeholders: Vec<PlaceholderValue>,
}

// ---- requests and responses ---------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateCollectionRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    /// A serialized [`CollectionSchema`].
    #[prost(bytes = "vec", tag = "4")]
    pub schema: Vec<u8>,
    #[prost(int32, tag = "5")]
    pub shards_num: i32,
    #[prost(int32, tag = "6")]
    pub consistency_level: i32,
    #[prost(message, repeated, tag = "7")]
    pub properties: Vec<KeyValuePair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DropCollectionRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ShowCollectionsRequest {
    #[prost(string, tag = "2")]
    pub db_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ShowCollectionsResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(string, repeated, tag = "2")]
    pub collection_names: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeCollectionRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeCollectionResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<CollectionSchema>,
    #[prost(string, repeated, tag = "9")]
    pub aliases: Vec<String>,
    /// The collection's own name (what an alias resolves to).
    #[prost(string, tag = "12")]
    pub collection_name: String,
    #[prost(message, repeated, tag = "13")]
    pub properties: Vec<KeyValuePair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InsertRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(message, repeated, tag = "5")]
    pub fields_data: Vec<FieldData>,
    #[prost(uint32, tag = "7")]
    pub num_rows: u32,
}

/// `UpsertRequest` has the same fields and numbers as [`InsertRequest`].
pub type UpsertRequest = InsertRequest;

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "5")]
    pub expr: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MutationResult {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(int64, tag = "6")]
    pub insert_cnt: i64,
    #[prost(int64, tag = "7")]
    pub delete_cnt: i64,
    #[prost(int64, tag = "8")]
    pub upsert_cnt: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FlushRequest {
    #[prost(string, repeated, tag = "3")]
    pub collection_names: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FlushResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(map = "string, message", tag = "3")]
    pub coll_seg_ids: HashMap<String, LongArray>,
    #[prost(map = "string, message", tag = "4")]
    pub flush_coll_seg_ids: HashMap<String, LongArray>,
    #[prost(map = "string, uint64", tag = "6")]
    pub coll_flush_ts: HashMap<String, u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetFlushStateRequest {
    #[prost(int64, repeated, tag = "1")]
    pub segment_ids: Vec<i64>,
    #[prost(uint64, tag = "2")]
    pub flush_ts: u64,
    #[prost(string, tag = "4")]
    pub collection_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetFlushStateResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(bool, tag = "2")]
    pub flushed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateIndexRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "4")]
    pub field_name: String,
    #[prost(message, repeated, tag = "5")]
    pub extra_params: Vec<KeyValuePair>,
    #[prost(string, tag = "6")]
    pub index_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeIndexRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "4")]
    pub field_name: String,
    #[prost(string, tag = "5")]
    pub index_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IndexDescription {
    #[prost(string, tag = "1")]
    pub index_name: String,
    #[prost(message, repeated, tag = "3")]
    pub params: Vec<KeyValuePair>,
    #[prost(string, tag = "4")]
    pub field_name: String,
    #[prost(int64, tag = "5")]
    pub indexed_rows: i64,
    #[prost(int64, tag = "6")]
    pub total_rows: i64,
    #[prost(int32, tag = "7")]
    pub state: i32,
    #[prost(string, tag = "8")]
    pub index_state_fail_reason: String,
    #[prost(int64, tag = "9")]
    pub pending_index_rows: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeIndexResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(message, repeated, tag = "2")]
    pub index_descriptions: Vec<IndexDescription>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LoadCollectionRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(int32, tag = "4")]
    pub replica_number: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetLoadStateRequest {
    #[prost(string, tag = "2")]
    pub collection_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetLoadStateResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(int32, tag = "2")]
    pub state: i32,
}

/// `CreateAliasRequest` and `AlterAliasRequest` (same fields and numbers).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AliasRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "4")]
    pub alias: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DropAliasRequest {
    #[prost(string, tag = "3")]
    pub alias: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "4")]
    pub expr: String,
    #[prost(string, repeated, tag = "5")]
    pub output_fields: Vec<String>,
    #[prost(message, repeated, tag = "9")]
    pub query_params: Vec<KeyValuePair>,
    #[prost(int32, tag = "11")]
    pub consistency_level: i32,
    #[prost(bool, tag = "12")]
    pub use_default_consistency: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResults {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(message, repeated, tag = "2")]
    pub fields_data: Vec<FieldData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchRequest {
    #[prost(string, tag = "3")]
    pub collection_name: String,
    #[prost(string, tag = "5")]
    pub dsl: String,
    /// A serialized [`PlaceholderGroup`] holding the query vectors.
    #[prost(bytes = "vec", tag = "6")]
    pub placeholder_group: Vec<u8>,
    #[prost(int32, tag = "7")]
    pub dsl_type: i32,
    #[prost(string, repeated, tag = "8")]
    pub output_fields: Vec<String>,
    #[prost(message, repeated, tag = "9")]
    pub search_params: Vec<KeyValuePair>,
    #[prost(int64, tag = "12")]
    pub nq: i64,
    #[prost(int32, tag = "14")]
    pub consistency_level: i32,
    #[prost(bool, tag = "15")]
    pub use_default_consistency: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResults {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "2")]
    pub results: Option<SearchResultData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetVersionRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetVersionResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// A response that carries a [`Status`].
pub trait HasStatus {
    /// The status, `None` when the server sent none.
    fn status(&self) -> Option<&Status>;
}

impl HasStatus for Status {
    fn status(&self) -> Option<&Status> {
        Some(self)
    }
}

macro_rules! has_status {
    ($($t:ty),*) => {$(
        impl HasStatus for $t {
            fn status(&self) -> Option<&Status> {
                self.status.as_ref()
            }
        }
    )*};
}

has_status!(
    ShowCollectionsResponse,
    DescribeCollectionResponse,
    MutationResult,
    FlushResponse,
    GetFlushStateResponse,
    DescribeIndexResponse,
    GetLoadStateResponse,
    QueryResults,
    SearchResults,
    GetVersionResponse
);

#[cfg(test)]
mod upstream;

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes hand-encoded from the field numbers in milvus-proto's schema.proto, so a wrong tag in
    /// the declarations above fails here and not only against a server.
    #[test]
    fn field_numbers_match_the_published_protos() {
        let f = FieldData {
            r#type: data_type::VARCHAR,
            field_name: "id".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::StringData(StringArray {
                    data: vec!["a".into()],
                })),
            })),
            field_id: 0,
        };
        // 1: varint 21; 2: "id"; 3: ScalarField { 6: StringArray { 1: "a" } }.
        let want = [0x08, 21, 0x12, 2, b'i', b'd', 0x1a, 5, 0x32, 3, 0x0a, 1, b'a'];
        assert_eq!(f.encode_to_vec(), want);
        let s = Status::decode(&[0x08, 1, 0x12, 1, b'x', 0x18, 100][..]).unwrap();
        assert_eq!((s.error_code, s.reason.as_str(), s.code), (1, "x", 100));
    }
}
