//! Query parameters of API requests.

use crate::status::ApiError;

/// The raw query parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a query string (`a=b&c=d`, percent-decoded).
    pub fn parse(query: Option<&str>) -> Params {
        let pairs = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Params(pairs)
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`/`false`/`0`; absent is false).
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some("true" | "1" | "True" | "TRUE") => Ok(true),
            Some("false" | "0" | "False" | "FALSE") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid boolean value {v:?} for parameter {name}"
            ))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value {v:?} for parameter {name}: must be an integer"))
            }),
        }
    }

    /// `dryRun`: only `All` is allowed (upstream's validation).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let mut dry = false;
        for v in self.all("dryRun") {
            match v {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dryRun value {other:?}: supported values: \"All\""
                    )));
                }
            }
        }
        Ok(dry)
    }

    /// `fieldValidation`: Strict, Warn (default) or Ignore.
    pub fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. must be one of Strict, Warn, or Ignore"
            ))),
        }
    }
}

/// How unknown and duplicate fields in a body are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Reject the request (400).
    Strict,
    /// Accept, drop the fields and send `Warning` headers.
    Warn,
    /// Accept and drop the fields silently.
    Ignore,
}
