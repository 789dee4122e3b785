//! Cell formats several printers share: container lists, "+ N more..."
//! lists, Go booleans and int-or-string values.

use serde_json::Value;

use super::field::Fields;

/// Container names and images, each joined by `,` (upstream's `layoutContainerCells`).
pub(crate) fn containers_and_images(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.str_at(&["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| c.str_at(&["image"])).collect();
    (names.join(","), images.join(","))
}

/// The first `max` items joined by `,` followed by `+ N more...` when there are
/// more; `<unset>` when there are none (upstream's `listWithMoreString`).
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if items.len() > max {
        return format!("{shown} + {} more...", items.len() - max);
    }
    if shown.is_empty() { "<unset>".to_string() } else { shown }
}

/// Go's `True`/`False`, or `<unset>` for a nil pointer (upstream's `printBoolPtr`).
pub(crate) fn bool_ptr(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// The string form of an `intstr.IntOrString`.
pub(crate) fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn more_lists() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..3], 3), "a,b,c");
        assert_eq!(list_with_more(&[], 3), "<unset>");
    }

    #[test]
    fn containers() {
        let c = json!([{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox:1"}]);
        let (names, images) = containers_and_images(c.as_array().map(Vec::as_slice).unwrap_or(&[]));
        assert_eq!((names.as_str(), images.as_str()), ("a,b", "nginx,busybox:1"));
        assert_eq!(int_or_string(&json!(2)), "2");
        assert_eq!(int_or_string(&json!("50%")), "50%");
    }
}
