//! The declarations in `proto.rs` checked against Milvus's published API definitions, vendored in
//! `index/proto/milvus/` (the release is named in the README there). The field numbers in `proto.rs`
//! are copied by hand and a wrong one is not an error anywhere: prost skips a field it does not know
//! and the server does the same, so a typo shows up only as a value that never arrives. This test
//! compiles the vendored `.proto` files with protox (no `protoc`) and compares, for every message
//! declared in `proto.rs`, each field's name, number, type and cardinality, oneof membership
//! included, and every enum constant.
//!
//! The declarations are read from `proto.rs`'s own `#[prost(...)]` attributes, the text the derive
//! compiles, so the check covers exactly what goes on the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use protox::prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use super::*;

/// The source whose attributes are checked.
const DECLARATIONS: &str = include_str!("../proto.rs");

/// The packages whose messages `proto.rs` declares, searched in this order.
const PACKAGES: [&str; 3] = [
    "milvus.proto.milvus",
    "milvus.proto.schema",
    "milvus.proto.common",
];

/// Declarations named differently from the upstream message, or standing for several.
const RENAMED: [(&str, &[&str]); 3] = [
    ("Ids", &["IDs"]),
    ("AliasRequest", &["CreateAliasRequest", "AlterAliasRequest"]),
    // `UpsertRequest` is a type alias of `InsertRequest`.
    ("InsertRequest", &["InsertRequest", "UpsertRequest"]),
];

/// Fields declared plain that upstream holds in a oneof (moved there during the 2.6 series: plain
/// in milvus-proto v2.6.0, in a oneof by v2.6.22). A field that is set encodes the same bytes either
/// way; the declarations keep the plain field that older servers (Milvus 2.3 to 2.5, which the
/// client also speaks) declare, and twotower always sets it (every search sends its query vectors).
const PLAIN_FOR_ONEOF: [(&str, &str); 1] = [("SearchRequest", "placeholder_group")];

/// One field (or oneof variant) as `proto.rs` declares it.
#[derive(Debug)]
struct Declared {
    /// The Rust struct the field belongs to (a oneof variant's: the struct holding the oneof).
    message: String,
    /// The protobuf field name (`r#type` → `type`, a variant `LongData` → `long_data`).
    name: String,
    /// prost's type word: `string`, `int32`, `message`, `map`, ...
    kind: String,
    tag: u32,
    repeated: bool,
    /// `map = "K, V"`: the key and value type words.
    map: Option<(String, String)>,
    /// The Rust type a `message` field holds (for maps: the value's).
    rust_type: String,
    /// The oneof field the variant belongs to (its Rust field name).
    oneof: Option<String>,
}

/// A oneof container: `#[prost(oneof = "...", tags = "...")] pub NAME: Option<...>`.
#[derive(Debug)]
struct OneofField {
    message: String,
    name: String,
    module: String,
    tags: BTreeSet<u32>,
}

/// `snake_case` of a CamelCase name.
fn snake(s: &str) -> String {
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                o.push('_');
            }
            o.push(c.to_ascii_lowercase());
        } else {
            o.push(c);
        }
    }
    o
}

/// `CamelCase` of a snake_case name.
fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The value of `key = "..."` in a `#[prost(...)]` attribute.
fn attr<'a>(attrs: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key} = \"");
    let start = attrs
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || attrs[..*i].ends_with(' ') || attrs[..*i].ends_with(','))?
        .0
        + pat.len();
    let len = attrs[start..].find('"')?;
    Some(&attrs[start..start + len])
}

/// The message type a Rust field type names: `Option<Status>` → `Status`,
/// `HashMap<String, LongArray>` → `LongArray`, `super::LongArray` → `LongArray`.
fn type_name(t: &str) -> String {
    let t = t.rsplit(", ").next().unwrap_or(t);
    let t = t.trim_end_matches(['>', ',']);
    t.rsplit(['<', ':']).next().unwrap_or(t).to_string()
}

/// Every struct, field, oneof and variant of `proto.rs`.
fn declarations() -> (Vec<String>, Vec<Declared>, Vec<OneofField>) {
    let (mut messages, mut fields, mut oneofs) = (Vec::new(), Vec::new(), Vec::new());
    let mut current: Option<String> = None;
    // Inside `pub mod NAME { ... }`: NAME (a oneof's module, or a module of constants).
    let mut module: Option<String> = None;
    let mut pending: Option<String> = None;
    for line in DECLARATIONS.lines() {
        if line == "}" {
            current = None;
            module = None;
            continue;
        }
        let l = line.trim();
        if l.starts_with("mod tests") || l.starts_with("mod upstream") {
            break;
        }
        if let Some(rest) = l.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches(['{', '}', ' ']).to_string();
            messages.push(name.clone());
            current = (!rest.ends_with("{}")).then_some(name);
            continue;
        }
        if let Some(rest) = l.strip_prefix("pub mod ") {
            module = Some(rest.trim_end_matches(['{', ' ']).to_string());
            continue;
        }
        if let Some(a) = l.strip_prefix("#[prost(") {
            pending = Some(a.trim_end_matches(")]").to_string());
            continue;
        }
        let Some(attrs) = pending.take() else {
            continue;
        };
        let tag = |attrs: &str| -> u32 {
            attr(attrs, "tag")
                .unwrap_or_else(|| panic!("no tag in #[prost({attrs})]"))
                .parse()
                .unwrap()
        };
        let kind = attrs.split([',', ' ']).next().unwrap_or_default().to_string();
        let map = attr(&attrs, "map").map(|m| {
            let (k, v) = m.split_once(", ").expect("map = \"K, V\"");
            (k.to_string(), v.to_string())
        });
        let repeated = attrs.contains(", repeated");
        if let (Some(message), Some(field)) = (&current, l.strip_prefix("pub ")) {
            let (name, ty) = field.split_once(": ").expect("pub NAME: TYPE,");
            let name = name.trim_start_matches("r#").to_string();
            if kind == "oneof" {
                oneofs.push(OneofField {
                    message: message.clone(),
                    name,
                    module: attr(&attrs, "oneof")
                        .unwrap()
                        .split("::")
                        .next()
                        .unwrap()
                        .to_string(),
                    tags: attr(&attrs, "tags")
                        .unwrap()
                        .split(", ")
                        .map(|t| t.parse().unwrap())
                        .collect(),
                });
                continue;
            }
            fields.push(Declared {
                message: message.clone(),
                name,
                tag: tag(&attrs),
                kind,
                repeated,
                map,
                rust_type: type_name(ty),
                oneof: None,
            });
        } else if let (Some(m), Some((variant, ty))) = (&module, l.split_once('(')) {
            fields.push(Declared {
                message: camel(m),
                name: snake(variant),
                tag: tag(&attrs),
                kind,
                repeated,
                map,
                rust_type: type_name(ty.trim_end_matches("),")),
                // Resolved to the oneof field's name below.
                oneof: Some(m.clone()),
            });
        } else {
            panic!("#[prost({attrs})] is followed by {l:?}, which this check cannot read");
        }
    }
    for f in &mut fields {
        if let Some(m) = &f.oneof {
            let o = oneofs
                .iter()
                .find(|o| &o.module == m)
                .unwrap_or_else(|| panic!("no oneof field uses module {m}"));
            f.oneof = Some(o.name.clone());
        }
    }
    (messages, fields, oneofs)
}

/// The vendored Milvus API, compiled.
fn upstream() -> DescriptorPool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/milvus");
    protox::Compiler::new([&dir])
        .and_then(|mut c| {
            c.include_imports(true).open_file("milvus.proto")?;
            Ok(c.descriptor_pool())
        })
        .unwrap_or_else(|e| panic!("cannot compile the protos in {}: {e:?}", dir.display()))
}

/// The upstream names a declared struct stands for (its own, unless renamed).
fn upstream_names(rust: &str) -> Vec<&str> {
    RENAMED
        .iter()
        .find(|(r, _)| *r == rust)
        .map_or_else(|| vec![rust], |(_, u)| u.to_vec())
}

/// The upstream message called `name` in exactly one of [`PACKAGES`].
fn find_message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    let found: Vec<_> = PACKAGES
        .iter()
        .filter_map(|p| pool.get_message_by_name(&format!("{p}.{name}")))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "message {name}: expected in exactly one of {PACKAGES:?}, found {found:?}"
    );
    found.into_iter().next().unwrap()
}

/// The upstream field `name` stands for. Upstream spells some names in camel case (`fieldID`,
/// `coll_segIDs`, `segmentIDs`) where the declarations use snake case (`field_id`, `coll_seg_ids`,
/// `segment_ids`), so names are compared without case and underscores.
fn field(msg: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    let plain = |s: &str| s.replace('_', "").to_ascii_lowercase();
    msg.fields().find(|f| plain(f.name()) == plain(name))
}

/// Whether prost's type word `kind` encodes upstream's `k` (an enum travels as an int32).
fn same_type(kind: &str, rust_type: &str, k: &Kind) -> bool {
    match (kind, k) {
        ("string", Kind::String)
        | ("int64", Kind::Int64)
        | ("uint32", Kind::Uint32)
        | ("uint64", Kind::Uint64)
        | ("bool", Kind::Bool)
        | ("float", Kind::Float)
        | ("double", Kind::Double)
        | ("int32", Kind::Int32 | Kind::Enum(_)) => true,
        ("bytes", Kind::Bytes) => true,
        ("message", Kind::Message(m)) => upstream_names(rust_type).contains(&m.name()),
        _ => false,
    }
}

/// What is wrong with declared field `d` against upstream field `u`, if anything.
fn mismatch(d: &Declared, u: &FieldDescriptor, plain_for_oneof: bool) -> Option<String> {
    if u.number() != d.tag {
        return Some(format!("tag {} where upstream has {}", d.tag, u.number()));
    }
    if let Some((k, v)) = &d.map {
        let Kind::Message(entry) = u.kind() else {
            return Some("a map where upstream has no map".into());
        };
        if !u.is_map()
            || !same_type(k, "", &entry.map_entry_key_field().kind())
            || !same_type(v, &d.rust_type, &entry.map_entry_value_field().kind())
        {
            return Some(format!("map<{k}, {v}> where upstream has {:?}", u.kind()));
        }
        return None;
    }
    if u.is_map() || u.is_list() != d.repeated {
        return Some(format!(
            "repeated = {} where upstream is {}",
            d.repeated,
            if u.is_map() {
                "a map"
            } else if u.is_list() {
                "repeated"
            } else {
                "singular"
            }
        ));
    }
    if !same_type(&d.kind, &d.rust_type, &u.kind()) {
        return Some(format!(
            "{} ({}) where upstream has {:?}",
            d.kind,
            d.rust_type,
            u.kind()
        ));
    }
    let oneof = u.containing_oneof().map(|o| o.name().to_string());
    if oneof != d.oneof && !(plain_for_oneof && d.oneof.is_none()) {
        return Some(format!("in oneof {:?} where upstream is in {oneof:?}", d.oneof));
    }
    None
}

#[test]
fn declarations_match_the_published_protos() {
    let pool = upstream();
    let (messages, fields, oneofs) = declarations();
    assert!(
        messages.len() >= 40 && fields.len() >= 100,
        "read too little of proto.rs"
    );
    let mut problems = Vec::new();
    let mut checked = BTreeMap::<String, usize>::new();
    for rust in &messages {
        for name in upstream_names(rust) {
            let msg = find_message(&pool, name);
            for d in fields.iter().filter(|f| &f.message == rust) {
                *checked.entry(rust.clone()).or_default() += 1;
                match field(&msg, &d.name) {
                    None => problems.push(format!("{name}.{}: no such field upstream", d.name)),
                    Some(u) => {
                        let plain = PLAIN_FOR_ONEOF.contains(&(name, d.name.as_str()));
                        if let Some(m) = mismatch(d, &u, plain) {
                            problems.push(format!("{name}.{}: {m}", d.name));
                        }
                    }
                }
            }
        }
    }
    for o in &oneofs {
        let tags: BTreeSet<u32> = fields
            .iter()
            .filter(|f| f.message == o.message && f.oneof.as_deref() == Some(&o.name))
            .map(|f| f.tag)
            .collect();
        if tags != o.tags {
            problems.push(format!(
                "{}.{}: oneof lists tags {:?}, its variants have {tags:?}",
                o.message, o.name, o.tags
            ));
        }
    }
    // Every field belongs to a declared message (a parse slip would leave one unchecked).
    for f in &fields {
        if !messages.contains(&f.message) {
            problems.push(format!(
                "{}.{}: belongs to no declared message",
                f.message, f.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "proto.rs differs from the published protos:\n{}",
        problems.join("\n")
    );
    assert!(checked.len() >= 30, "checked too few messages: {checked:?}");
}

#[test]
fn constants_match_the_published_enums() {
    let pool = upstream();
    let consts: [(&str, &str, i32); 13] = [
        ("schema.DataType", "Int64", data_type::INT64),
        ("schema.DataType", "VarChar", data_type::VARCHAR),
        ("schema.DataType", "Array", data_type::ARRAY),
        ("schema.DataType", "FloatVector", data_type::FLOAT_VECTOR),
        ("common.ConsistencyLevel", "Strong", consistency::STRONG),
        ("common.ConsistencyLevel", "Bounded", consistency::BOUNDED),
        ("common.IndexState", "Finished", index_state::FINISHED),
        ("common.IndexState", "Failed", index_state::FAILED),
        ("common.LoadState", "LoadStateNotExist", load_state::NOT_EXIST),
        ("common.LoadState", "LoadStateNotLoad", load_state::NOT_LOAD),
        ("common.LoadState", "LoadStateLoaded", load_state::LOADED),
        ("common.PlaceholderType", "FloatVector", PLACEHOLDER_FLOAT_VECTOR),
        ("common.DslType", "BoolExprV1", DSL_BOOL_EXPR),
    ];
    // A constant added to proto.rs must be added here too.
    let declared = DECLARATIONS
        .lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .filter(|l| l.trim_start().starts_with("pub const "))
        .count();
    assert_eq!(declared, consts.len(), "every constant of proto.rs is checked");
    for (e, value, v) in consts {
        let name = format!("milvus.proto.{e}");
        let en = pool
            .get_enum_by_name(&name)
            .unwrap_or_else(|| panic!("no enum {name} upstream"));
        let u = en
            .get_value_by_name(value)
            .unwrap_or_else(|| panic!("no value {value} in {name}"));
        assert_eq!(u.number(), v, "{name}::{value}");
    }
}
