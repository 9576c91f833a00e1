//! A blocking Milvus gRPC client: tonic over one lazily connected HTTP/2 channel, driven by a small
//! runtime of its own so that the synchronous index code (and the server's handlers) can call it
//! from any thread, inside another tokio runtime or not. Every call has a deadline; a server that is
//! down or slow is [`MilvusError::Unavailable`], and the channel reconnects on the next call.

use super::proto::{self, HasStatus};
use std::sync::Arc;
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// Environment variable holding the credentials: a token, or `user:password`. Never logged.
pub const TOKEN_ENV: &str = "TWOTOWER_MILVUS_TOKEN";

/// Why a Milvus call failed.
#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    /// The `milvus://` address is malformed.
    #[error("bad Milvus address {uri:?}: {problem} (expected milvus://HOST:PORT/NAME)")]
    BadUri {
        /// The address given.
        uri: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The server cannot be reached or did not answer in time.
    #[error("Milvus at {addr} is unavailable ({op}): {detail}")]
    Unavailable {
        /// host:port.
        addr: String,
        /// The call that failed.
        op: &'static str,
        /// The transport's or the deadline's message.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("Milvus {op} failed: {reason} (code {code})")]
    Server {
        /// The call that failed.
        op: &'static str,
        /// The server's error code.
        code: i32,
        /// The server's message.
        reason: String,
    },
    /// The server's answer does not have the shape twotower wrote (another tool's collection, a
    /// truncated result).
    #[error("unexpected Milvus answer to {op}: {problem}")]
    Malformed {
        /// The call.
        op: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl MilvusError {
    /// Whether waiting and retrying may help (the server is down, restarting or slow).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, MilvusError::Unavailable { .. })
    }

    /// Whether the server says the collection is not loaded into memory (after a restart).
    pub fn is_not_loaded(&self) -> bool {
        match self {
            // 101 is ErrCollectionNotLoaded in Milvus's error codes; older servers only say it.
            MilvusError::Server { code, reason, .. } => *code == 101 || reason.contains("not loaded"),
            _ => false,
        }
    }

    /// Whether the server says the collection (or alias) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            MilvusError::Server { code, reason, .. } => {
                *code == 100 || reason.contains("not found") || reason.contains("not exist")
            }
            _ => false,
        }
    }
}

/// Result of a Milvus call.
pub type MResult<T> = std::result::Result<T, MilvusError>;

/// `s` with the credentials of its authority replaced (`milvus://admin:***@host/name`, or
/// `milvus://***@host/name` for a bare token): what an error may print of an address.
pub fn redact_uri(s: &str) -> String {
    let Some(rest) = s.strip_prefix(MilvusUri::SCHEME) else {
        return s.to_string();
    };
    match rest.rfind('@') {
        Some(at) => {
            let user = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{}{user}{}", MilvusUri::SCHEME, &rest[at..])
        }
        None => s.to_string(),
    }
}

/// Where a Milvus-backed index lives: `milvus://HOST:PORT/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusUri {
    /// Host name or address.
    pub host: String,
    /// gRPC port (19530 by default).
    pub port: u16,
    /// The index name: the alias that names the served version, and the prefix of its collections.
    pub name: String,
}

impl MilvusUri {
    /// The URI scheme.
    pub const SCHEME: &'static str = "milvus://";

    /// Whether `s` names a Milvus index rather than a directory.
    pub fn is_milvus(s: &str) -> bool {
        s.starts_with(Self::SCHEME)
    }

    /// Parses `milvus://HOST[:PORT]/NAME`; NAME is letters, digits and `_`, starting with a letter
    /// or `_` (Milvus's rule for collection names), without the `__v` version separator.
    pub fn parse(s: &str) -> MResult<MilvusUri> {
        let bad = |problem: &str| MilvusError::BadUri {
            uri: redact_uri(s),
            problem: problem.to_string(),
        };
        let rest = s
            .strip_prefix(Self::SCHEME)
            .ok_or_else(|| bad("it does not start with milvus://"))?;
        let (authority, name) = rest
            .split_once('/')
            .ok_or_else(|| bad("no /NAME after the host"))?;
        if authority.contains('@') {
            return Err(bad(&format!(
                "credentials do not go in the address (it is printed); set {TOKEN_ENV} instead"
            )));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("the port is not a number"))?),
            None => (authority, 19530),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let name = name.trim_end_matches('/');
        let ok_start = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !ok_start || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(
                "NAME must be letters, digits and _, starting with a letter or _",
            ));
        }
        if name.contains("__v") || name.len() > 200 {
            return Err(bad(
                "NAME must not contain \"__v\" and must be at most 200 characters",
            ));
        }
        Ok(MilvusUri {
            host: host.to_string(),
            port,
            name: name.to_string(),
        })
    }

    /// host:port.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for MilvusUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "milvus://{}:{}/{}", self.host, self.port, self.name)
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Deadline of one call (a search, one insert batch). Waits (for an index build, a load) poll
    /// with calls of this deadline.
    pub timeout: Duration,
    /// Deadline for opening the TCP/HTTP2 connection.
    pub connect_timeout: Duration,
    /// A token or `user:password`; default: [`TOKEN_ENV`].
    pub token: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            token: std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
        }
    }
}

/// One connection to a Milvus server; cheap to clone (the channel and runtime are shared).
#[derive(Clone)]
pub struct Client {
    rt: Arc<tokio::runtime::Runtime>,
    grpc: tonic::client::Grpc<Channel>,
    auth: Option<AsciiMetadataValue>,
    timeout: Duration,
    addr: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials here: a Debug print of a client must not leak them.
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

/// The least deadline of a writer's or DDL call.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest message either side may send: a search of many queries or a page of a query.
const MAX_MESSAGE: usize = 512 << 20;

impl Client {
    /// A client for `uri`'s server. Connects lazily: a server that is down is an error of the first
    /// call, not of this one, and a server that comes back is used again without a new client.
    pub fn new(uri: &MilvusUri, opts: &ConnectOptions) -> MResult<Client> {
        let addr = uri.addr();
        let unavailable = |detail: String| MilvusError::Unavailable {
            addr: addr.clone(),
            op: "connect",
            detail,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("milvus-client")
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("cannot start the client runtime: {e}")))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| MilvusError::BadUri {
                uri: uri.to_string(),
                problem: e.to_string(),
            })?
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true);
        let channel = {
            let _guard = rt.enter();
            endpoint.connect_lazy()
        };
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let auth = match &opts.token {
            None => None,
            Some(t) => {
                // Milvus reads `authorization: base64(token or user:password)`.
                let v = MetadataValue::try_from(base64_encode(t.as_bytes()))
                    .map_err(|_| unavailable("the token is not valid header text".into()))?;
                Some(v)
            }
        };
        Ok(Client {
            rt: Arc::new(rt),
            grpc,
            auth,
            timeout: opts.timeout,
            addr,
        })
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// host:port of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Calls `MilvusService/<method>` within the per-call timeout and checks the status the answer
    /// carries: for the request path (search, point reads, the watcher's alias lookup).
    pub fn call<Req, Resp>(&self, method: &'static str, req: Req) -> MResult<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + HasStatus + Send + Sync + 'static,
    {
        self.call_within(method, req, self.timeout)
    }

    /// [`Client::call`] for writers and DDL (create, insert, flush, index, load, alias): a busy server
    /// takes seconds for these, which must not fail a build, so the deadline is at least
    /// [`ADMIN_TIMEOUT`].
    pub fn call_admin<Req, Resp>(&self, method: &'static str, req: Req) -> MResult<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + HasStatus + Send + Sync + 'static,
    {
        self.call_within(method, req, self.timeout.max(ADMIN_TIMEOUT))
    }

    fn call_within<Req, Resp>(&self, method: &'static str, req: Req, deadline: Duration) -> MResult<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + HasStatus + Send + Sync + 'static,
    {
        let resp: Resp = self.raw_call(method, req, deadline)?;
        match resp.status() {
            Some(s) if s.code != 0 || s.error_code != 0 => Err(MilvusError::Server {
                op: method,
                code: if s.code != 0 { s.code } else { s.error_code },
                reason: s.reason.clone(),
            }),
            _ => Ok(resp),
        }
    }

    fn raw_call<Req, Resp>(&self, method: &'static str, req: Req, deadline: Duration) -> MResult<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let unavailable = |detail: String| MilvusError::Unavailable {
            addr: self.addr.clone(),
            op: method,
            detail,
        };
        let path = PathAndQuery::try_from(format!("/milvus.proto.milvus.MilvusService/{method}"))
            .map_err(|e| unavailable(e.to_string()))?;
        let mut grpc = self.grpc.clone();
        let mut request = tonic::Request::new(req);
        request.set_timeout(deadline);
        if let Some(a) = &self.auth {
            request.metadata_mut().insert("authorization", a.clone());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // Spawned on the client's own runtime and awaited through a channel: a plain `block_on`
        // would panic when the caller is itself inside a tokio runtime (the HTTP server).
        self.rt.spawn(async move {
            let fut = async {
                grpc.ready()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                let codec = tonic::codec::ProstCodec::<Req, Resp>::default();
                grpc.unary(request, path, codec).await
            };
            let r = tokio::time::timeout(deadline, fut).await;
            let _ = tx.send(r);
        });
        match rx.recv() {
            Err(_) => Err(unavailable("the client runtime stopped".into())),
            Ok(Err(_)) => Err(unavailable(format!("no answer within {deadline:?}"))),
            Ok(Ok(Err(status))) => Err(from_status(&self.addr, method, status)),
            Ok(Ok(Ok(resp))) => Ok(resp.into_inner()),
        }
    }

    /// The server's version string (also a cheap liveness probe).
    pub fn server_version(&self) -> MResult<String> {
        let r: proto::GetVersionResponse = self.call("GetVersion", proto::GetVersionRequest {})?;
        Ok(r.version)
    }
}

fn from_status(addr: &str, op: &'static str, s: tonic::Status) -> MilvusError {
    use tonic::Code;
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::Aborted => {
            MilvusError::Unavailable {
                addr: addr.to_string(),
                op,
                detail: format!("{:?}: {}", s.code(), s.message()),
            }
        }
        Code::Unauthenticated | Code::PermissionDenied => MilvusError::Server {
            op,
            code: s.code() as i32,
            reason: format!("{} (set {TOKEN_ENV} to a token or user:password)", s.message()),
        },
        c => MilvusError::Server {
            op,
            code: c as i32,
            reason: s.message().to_string(),
        },
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let u = MilvusUri::parse("milvus://127.0.0.1:19531/movies").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.name.as_str()),
            ("127.0.0.1", 19531, "movies")
        );
        assert_eq!(u.to_string(), "milvus://127.0.0.1:19531/movies");
        assert_eq!(MilvusUri::parse("milvus://db/items_2").unwrap().port, 19530);
        for bad in [
            "movies",
            "milvus://host",
            "milvus://:1/x",
            "milvus://h:port/x",
            "milvus://h:1/9x",
            "milvus://h:1/a-b",
            "milvus://h:1/a__v1",
            "milvus://u:p@h:1/x",
        ] {
            assert!(MilvusUri::parse(bad).is_err(), "{bad}");
        }
        let e = MilvusUri::parse("milvus://u:secret@h:1/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOKEN_ENV), "{e}");
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
        assert_eq!(base64_encode(b"root:Milvus"), "cm9vdDpNaWx2dXM=");
    }
}
