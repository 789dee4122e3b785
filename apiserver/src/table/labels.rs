//! Labels and label selectors as upstream prints them: `labels.FormatLabels`,
//! `metav1.FormatLabelSelector` and the selector's canonical string form.

use serde_json::{Map, Value};

use super::field::Fields;

/// `k=v` pairs sorted by key and joined by `,`; `<none>` when empty
/// (upstream's `labels.FormatLabels`).
pub(crate) fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let s = labels_string(labels);
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// `k=v` pairs sorted by key and joined by `,` (`labels.Set.String`).
fn labels_string(labels: Option<&Map<String, Value>>) -> String {
    let Some(labels) = labels else { return String::new() };
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a `metav1.LabelSelector` cannot be turned into a selector.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidSelector;

/// The canonical string of a `metav1.LabelSelector` (upstream's
/// `LabelSelectorAsSelector(..).String()`): requirements sorted by key,
/// `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by `,`. A missing or
/// empty selector gives `""`.
pub(crate) fn selector_string(selector: Option<&Value>) -> Result<String, InvalidSelector> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(match_labels) = selector.map_at(&["matchLabels"]) {
        for (k, v) in match_labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    // Map order is not meaningful; only the key sort below decides the order.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    for expr in selector.list_at(&["matchExpressions"]) {
        let key = expr.str_at(&["key"]);
        let mut values: Vec<&str> = expr
            .list_at(&["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        values.sort_unstable();
        let text = match expr.str_at(&["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Err(InvalidSelector),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(InvalidSelector),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(InvalidSelector),
        };
        requirements.push((key.to_string(), text));
    }
    // Upstream sorts all requirements by key; ties keep their order.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it is
/// empty and `<error>` when it is invalid.
pub(crate) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(InvalidSelector) => "<error>".to_string(),
    }
}

/// The Go `String()` of a `*metav1.LabelSelector` (its generated debug form),
/// which upstream prints for admission policy bindings' `paramRef.selector`.
pub(crate) fn go_debug_string(selector: &Value) -> String {
    let mut labels: Vec<(&String, &Value)> = selector
        .map_at(&["matchLabels"])
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let mut match_labels = String::from("map[string]string{");
    for (k, v) in labels {
        match_labels.push_str(&format!("{k}: {},", v.as_str().unwrap_or("")));
    }
    match_labels.push('}');
    let mut expressions = String::from("[]LabelSelectorRequirement{");
    for expr in selector.list_at(&["matchExpressions"]) {
        let values: Vec<&str> = expr
            .list_at(&["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        expressions.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            expr.str_at(&["key"]),
            expr.str_at(&["operator"]),
            values.join(" ")
        ));
    }
    expressions.push('}');
    format!("&LabelSelector{{MatchLabels:{match_labels},MatchExpressions:{expressions},}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_sorted_or_none() {
        let m = json!({"b": "2", "a": "1"});
        assert_eq!(format_labels(m.as_object()), "a=1,b=2");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn selectors_like_upstream() {
        let check = |sel: Value, expected: &str| assert_eq!(format_label_selector(Some(&sel)), expected, "{sel}");
        check(json!({"matchLabels": {"app": "web", "tier": "fe"}}), "app=web,tier=fe");
        check(json!({}), "<none>");
        check(
            json!({"matchLabels": {"z": "1"}, "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "a", "operator": "Exists"},
                {"key": "gone", "operator": "DoesNotExist"},
                {"key": "m", "operator": "NotIn", "values": ["x"]}
            ]}),
            "a,env in (dev,prod),!gone,m notin (x),z=1",
        );
        check(
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            "<error>",
        );
        check(
            json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
            "<error>",
        );
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(selector_string(None), Ok(String::new()));
    }

    #[test]
    fn go_debug_form() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]});
        assert_eq!(
            go_debug_string(&sel),
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }
}
