//! The rows a twotower collection holds (id, unit vector, title, genres) as [`ItemRows`], converted to
//! and from Milvus's column-wise `FieldData`.

use super::client::{MResult, MilvusError};
use super::proto::{self, data_type};
use crate::error::{Error, Result};
use crate::rows::ItemRows;

/// Field names of a twotower collection.
pub const ID_FIELD: &str = "id";
/// The vector field.
pub const VECTOR_FIELD: &str = "vector";
/// The title field (filters and display).
pub const TITLE_FIELD: &str = "title";
/// The genres field, an array of strings (`array_contains(genres, "Comedy")`).
pub const GENRES_FIELD: &str = "genres";

/// Limits of the scalar fields, in bytes (Milvus's `max_length`) and elements (`max_capacity`).
pub(super) const MAX_ID: usize = 512;
pub(super) const MAX_TITLE: usize = 1024;
pub(super) const MAX_GENRE: usize = 128;
pub(super) const MAX_GENRES: usize = 256;

/// Checks `rows` for a collection: [`ItemRows::check`], then the fields' limits (id, genre sizes).
pub(super) fn check_rows(rows: &ItemRows, dim: usize) -> Result<()> {
    rows.check(dim)?;
    for (r, id) in rows.ids.iter().enumerate() {
        if id.len() > MAX_ID {
            return Err(Error::BadIds(format!(
                "row {r}: item id {id:?} must be 1 to {MAX_ID} bytes for Milvus"
            )));
        }
        let genres = rows.genres.get(r).map_or(&[][..], Vec::as_slice);
        if genres.len() > MAX_GENRES || genres.iter().any(|g| g.len() > MAX_GENRE) {
            return Err(Error::BadIds(format!(
                "item {id:?}: at most {MAX_GENRES} genres of at most {MAX_GENRE} bytes each fit the collection"
            )));
        }
    }
    Ok(())
}

fn string_field(name: &str, data: Vec<String>) -> proto::FieldData {
    scalar_field(
        name,
        data_type::VARCHAR,
        proto::scalar_field::Data::StringData(proto::StringArray { data }),
    )
}

fn scalar_field(name: &str, ty: i32, data: proto::scalar_field::Data) -> proto::FieldData {
    proto::FieldData {
        r#type: ty,
        field_name: name.to_string(),
        field: Some(proto::field_data::Field::Scalars(proto::ScalarField {
            data: Some(data),
        })),
        field_id: 0,
    }
}

/// The title cut to fit the field (at a character boundary).
pub(super) fn fit_title(t: &str) -> String {
    let mut end = t.len().min(MAX_TITLE);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t[..end].to_string()
}

pub(super) fn fields_of(rows: &ItemRows, range: std::ops::Range<usize>, dim: usize) -> Vec<proto::FieldData> {
    // Rows without attributes are written with empty titles and genres.
    let genres = range
        .clone()
        .map(|r| proto::ScalarField {
            data: Some(proto::scalar_field::Data::StringData(proto::StringArray {
                data: rows.genres.get(r).cloned().unwrap_or_default(),
            })),
        })
        .collect();
    vec![
        string_field(ID_FIELD, rows.ids[range.clone()].to_vec()),
        proto::FieldData {
            r#type: data_type::FLOAT_VECTOR,
            field_name: VECTOR_FIELD.into(),
            field: Some(proto::field_data::Field::Vectors(proto::VectorField {
                dim: dim as i64,
                data: Some(proto::vector_field::Data::FloatVector(proto::FloatArray {
                    data: rows.vectors[range.start * dim..range.end * dim].to_vec(),
                })),
            })),
            field_id: 0,
        },
        string_field(
            TITLE_FIELD,
            range
                .clone()
                .map(|r| rows.titles.get(r).map_or_else(String::new, |t| fit_title(t)))
                .collect(),
        ),
        scalar_field(
            GENRES_FIELD,
            data_type::ARRAY,
            proto::scalar_field::Data::ArrayData(proto::ArrayArray {
                data: genres,
                element_type: data_type::VARCHAR,
            }),
        ),
    ]
}

/// Reads the columns of a query answer back into rows (fields missing from the answer stay empty).
pub(super) fn rows_of(op: &'static str, fields: Vec<proto::FieldData>, dim: usize) -> MResult<ItemRows> {
    let malformed = |problem: String| MilvusError::Malformed { op, problem };
    let mut out = ItemRows::default();
    let (mut titles, mut genres) = (None, None);
    for f in fields {
        match (f.field_name.as_str(), f.field) {
            (ID_FIELD, Some(proto::field_data::Field::Scalars(s))) => match s.data {
                Some(proto::scalar_field::Data::StringData(a)) => out.ids = a.data,
                _ => return Err(malformed("the id column is not strings".into())),
            },
            (VECTOR_FIELD, Some(proto::field_data::Field::Vectors(v))) => match v.data {
                Some(proto::vector_field::Data::FloatVector(a)) => out.vectors = a.data,
                None => {}
            },
            (TITLE_FIELD, Some(proto::field_data::Field::Scalars(s))) => {
                if let Some(proto::scalar_field::Data::StringData(a)) = s.data {
                    titles = Some(a.data);
                }
            }
            (GENRES_FIELD, Some(proto::field_data::Field::Scalars(s))) => {
                if let Some(proto::scalar_field::Data::ArrayData(a)) = s.data {
                    genres = Some(
                        a.data
                            .into_iter()
                            .map(|e| match e.data {
                                Some(proto::scalar_field::Data::StringData(g)) => g.data,
                                _ => Vec::new(),
                            })
                            .collect(),
                    );
                }
            }
            _ => {}
        }
    }
    let n = out.ids.len();
    out.titles = titles.unwrap_or_else(|| vec![String::new(); n]);
    out.genres = genres.unwrap_or_else(|| vec![Vec::new(); n]);
    if !out.vectors.is_empty() && out.vectors.len() != n * dim {
        return Err(malformed(format!(
            "{n} ids but {} vector components",
            out.vectors.len()
        )));
    }
    if out.titles.len() != n || out.genres.len() != n {
        return Err(malformed(format!(
            "{n} ids but {} titles and {} genre lists",
            out.titles.len(),
            out.genres.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cut_at_a_character_boundary() {
        let t = "é".repeat(600);
        let f = fit_title(&t);
        assert!(f.len() <= MAX_TITLE && t.starts_with(&f) && f.len() == 1024);
    }

    #[test]
    fn rows_are_checked_before_anything_is_sent() {
        let mut r = ItemRows::bare(vec!["a".into(), "a".into()], vec![1.0, 0.0, 0.0, 1.0]);
        assert!(check_rows(&r, 2).unwrap_err().to_string().contains("twice"));
        r.ids[1] = "x".repeat(MAX_ID + 1);
        assert!(check_rows(&r, 2).unwrap_err().to_string().contains("512"));
        r.ids[1] = "b".into();
        check_rows(&r, 2).unwrap();
        assert!(check_rows(&r, 3).is_err());
    }
}
