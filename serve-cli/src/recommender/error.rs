//! `RecError`, every way a recommendation can fail, and the one mapping of those kinds to HTTP statuses.
//! The shell prints an error's `Display`; the server sends it as `{"error": …}` with [`RecError::http_status`].

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum RecError {
    /// A user id the dataset does not know, asked for without the popularity fallback.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// An item named by the request itself (a path, `similar`, `item`) that the catalog does not know.
    #[error("unknown item {0:?} (try `find <words>`)")]
    UnknownItem(String),
    /// Item ids in a list (a request body, `recent`) that the catalog does not know, all of them.
    #[error("unknown item ids: {}", .0.join(", "))]
    UnknownItems(Vec<String>),
    /// A genre the catalog does not have.
    #[error("unknown genre {name:?}; genres: {}", .known.join(", "))]
    UnknownGenre {
        /// The genre asked for.
        name: String,
        /// The catalog's genres.
        known: Vec<String>,
    },
    /// A parameter out of range or malformed (k, ef, an empty list, a bad id).
    #[error("{0}")]
    BadParameter(String),
    /// A known item that the live index version does not hold (removed, or not yet added).
    #[error("item {item:?} is not in index version {version}")]
    NotIndexed {
        /// The item id.
        item: String,
        /// The live version.
        version: String,
    },
    /// The search backend cannot answer now.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Loading the model, dataset or index failed.
    // The cause is part of the message and not exposed as `source()`, so a caller that prints the
    // whole chain does not print it twice.
    #[error("{what}: {cause}")]
    Load {
        /// What was being loaded, with its path.
        what: String,
        /// The library's error.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The model failed to embed a query.
    #[error("model: {0}")]
    Model(twotower_towers::Error),
    /// The index failed to search or load.
    #[error(transparent)]
    Index(#[from] twotower_index::Error),
    /// Anything else that is not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl RecError {
    /// The HTTP status for this kind of error: 404 for a user or item the route names, 400 for a bad
    /// parameter, unknown ids in a body or what the backend does not offer (exact search on Milvus),
    /// 503 when the backend is unavailable (a Milvus server down or slow included), 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            RecError::UnknownUser(_) | RecError::UnknownItem(_) | RecError::NotIndexed { .. } => 404,
            RecError::UnknownItems(_) | RecError::UnknownGenre { .. } | RecError::BadParameter(_) => 400,
            RecError::Unavailable(_) => 503,
            RecError::Index(e) if e.is_unavailable() => 503,
            RecError::Index(e) if e.is_unsupported() => 400,
            RecError::Load { .. } | RecError::Model(_) | RecError::Index(_) | RecError::Internal(_) => 500,
        }
    }

    /// Whether the caller caused it (a 4xx), as opposed to the service.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.http_status())
    }

    pub(crate) fn load(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        RecError::Load {
            what: what.into(),
            cause: Box::new(e),
        }
    }
}

impl From<twotower_towers::Error> for RecError {
    fn from(e: twotower_towers::Error) -> Self {
        RecError::Model(e)
    }
}

/// Result alias of the recommender.
pub type Result<T, E = RecError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_status_per_kind() {
        assert_eq!(RecError::UnknownUser("u".into()).http_status(), 404);
        assert_eq!(RecError::UnknownItem("i".into()).http_status(), 404);
        assert_eq!(
            RecError::UnknownItems(vec!["a".into(), "b".into()]).http_status(),
            400
        );
        assert_eq!(RecError::BadParameter("k".into()).http_status(), 400);
        assert_eq!(RecError::Unavailable("down".into()).http_status(), 503);
        assert_eq!(RecError::Internal("x".into()).http_status(), 500);
        let index = |e: twotower_index::Error| RecError::Index(e).http_status();
        assert_eq!(index(twotower_index::Error::Unavailable("down".into())), 503);
        assert_eq!(index(twotower_index::Error::Unsupported("exact".into())), 400);
        assert_eq!(index(twotower_index::Error::BadIds("x".into())), 500);
        assert_eq!(
            RecError::UnknownItems(vec!["a".into(), "b".into()]).to_string(),
            "unknown item ids: a, b"
        );
    }
}
