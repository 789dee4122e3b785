//! Turns `labelSelector` and `fieldSelector` parameters into a
//! [`Predicate`] for a resource.

use crate::resources::ResourceInfo;
use crate::status::ApiError;

use super::list::Predicate;

/// The predicate of a list or watch request.
pub fn predicate(_info: &ResourceInfo, label_selector: Option<&str>, field_selector: Option<&str>) -> Result<Predicate, ApiError> {
    let labels = label_selector.map(str::trim).filter(|s| !s.is_empty());
    let fields = field_selector.map(str::trim).filter(|s| !s.is_empty());
    match (labels, fields) {
        (None, None) => Ok(Predicate::everything()),
        _ => Err(ApiError::bad_request("selectors are being wired in")),
    }
}
