//! The request and the answer as the flows see them, independent of the Workers runtime: the
//! shell (`shell.rs`) reads the runtime's own request into an [`EdgeRequest`] and builds the
//! runtime's response from a [`Reply`], so every flow runs (and is tested) natively. A
//! `Problem` (shared with the origin) is rendered here.

use serde_json::Value;
use shared::problem::Problem;

/// The parts of a request the flows read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Scheme and host the client used (`https://api.example.com`): DRF's page links are
    /// absolute URLs on it.
    pub public_base: String,
    /// The `Origin` header (CORS).
    pub origin_header: Option<String>,
    pub authorization: Option<String>,
    pub cf_connecting_ip: Option<String>,
    /// `User-Agent`: a login's session keeps it for its owner's list (`sessions/`).
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub body: RequestBody,
}

/// The body as the shell read it (`body::read_bounded`): never more than the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    Read(Vec<u8>),
    /// Declared or found to be over `shared::api::MAX_BODY_BYTES`; the rest was never read.
    TooLarge,
    /// The stream failed (the client went away); the cause, for the log.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    Empty,
    /// Serialized with `application/json`.
    Json(Value),
    /// Passed on as they are (the origin's bodies, static assets).
    Bytes {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The value of a header the reply carries (`name` in any case).
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, whether built here or passed on as bytes.
    pub fn json_body(&self) -> Option<Value> {
        match &self.body {
            ReplyBody::Empty => None,
            ReplyBody::Json(value) => Some(value.clone()),
            ReplyBody::Bytes { bytes, .. } => serde_json::from_slice(bytes).ok(),
        }
    }
}

/// Every problem is answered by this one rendering.
impl From<Problem> for Reply {
    fn from(problem: Problem) -> Self {
        Self {
            status: problem.status(),
            headers: problem.headers(),
            body: ReplyBody::Json(problem.body()),
        }
    }
}
