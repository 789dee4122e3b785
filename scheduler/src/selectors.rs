//! Matching of label selectors, node selector terms and tolerations, as
//! apimachinery's `labels.Selector`, `nodeaffinity` and `v1helper` do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A compiled label selector. `nothing` is the selector of a nil
/// `LabelSelector` (matches no object); an empty one matches every object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches nothing.
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// The selector that matches everything.
    pub fn everything() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// Compiles `metav1.LabelSelector` (`None` matches nothing). An unknown
    /// operator makes the selector match nothing, as a conversion error does
    /// upstream.
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else { return Selector::nothing() };
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => return Selector::nothing(),
            };
            requirements.push(Requirement {
                key: e.key.clone(),
                op,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// Compiles `metav1.LabelSelector` as upstream's
    /// `LabelSelectorAsSelector` does, `None` where that fails: an unknown
    /// operator, `In`/`NotIn` without values, `Exists`/`DoesNotExist` with
    /// values.
    pub fn try_from_label_selector(sel: &LabelSelector) -> Option<Selector> {
        let valid = sel.match_expressions.iter().flatten().all(|e| {
            let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
            match e.operator.as_str() {
                "In" | "NotIn" => has_values,
                "Exists" | "DoesNotExist" => !has_values,
                _ => false,
            }
        });
        valid.then(|| Selector::from_label_selector(Some(sel)))
    }

    /// The same selector with its requirements in one order (by key, then
    /// operator and values) and each once: selectors that only differ in
    /// the order they were put together compare (and print) equal.
    pub fn canonical(mut self) -> Selector {
        self.requirements.sort();
        self.requirements.dedup();
        self
    }

    /// Adds `key in (value)` (used for matchLabelKeys).
    pub fn with_equals(mut self, key: &str, value: &str) -> Selector {
        self.requirements.push(Requirement {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
        });
        self
    }

    /// The conjunction of both selectors.
    pub fn and(mut self, other: &Selector) -> Selector {
        self.nothing |= other.nothing;
        self.requirements.extend(other.requirements.iter().cloned());
        self
    }

    /// The selector `key=value` for every pair of a map selector (Service,
    /// ReplicationController); `None` for an empty map.
    pub fn from_map(map: &BTreeMap<String, String>) -> Option<Selector> {
        if map.is_empty() {
            return None;
        }
        let mut s = Selector::everything();
        for (k, v) in map {
            s = s.with_equals(k, v);
        }
        Some(s)
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| {
            let v = labels.get(&r.key);
            match r.op {
                Op::In => v.is_some_and(|v| r.values.contains(v)),
                Op::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }

    /// True for the selector of a nil `LabelSelector` (matches nothing).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The `key in (values)` requirements (matchLabels and `In`
    /// expressions): a matching object carries one of the values.
    pub fn equalities(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.requirements
            .iter()
            .filter(|r| r.op == Op::In)
            .map(|r| (r.key.as_str(), r.values.as_slice()))
    }

    /// True for the empty selector (matches everything).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }
}

/// Whether `labels` match `sel` exactly as the compiled
/// [`Selector::from_label_selector`] would (`None` matches nothing), without
/// compiling it: checking many workloads' selectors against one pod
/// allocates nothing.
pub fn label_selector_matches(sel: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(sel) = sel else { return false };
    let exprs = sel.match_expressions.iter().flatten();
    if exprs
        .clone()
        .any(|e| !matches!(e.operator.as_str(), "In" | "NotIn" | "Exists" | "DoesNotExist"))
    {
        return false;
    }
    sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
        && exprs.clone().all(|e| {
            let v = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => v.is_some_and(|v| values.contains(v)),
                "NotIn" => v.is_none_or(|v| !values.contains(v)),
                "Exists" => v.is_some(),
                _ => v.is_none(),
            }
        })
}

/// Whether `labels` match the map selector (Service, ReplicationController)
/// as [`Selector::from_map`]'s would (an empty map selects nothing).
pub fn map_selector_matches(map: &BTreeMap<String, String>, labels: &Labels) -> bool {
    !map.is_empty() && map.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn node_requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// True when `node` matches the term (all expressions and fields; an empty
/// term matches nothing).
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    let name = node.metadata.name.as_ref();
    exprs
        .iter()
        .all(|r| node_requirement_matches(r, labels.and_then(|l| l.get(&r.key))))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && node_requirement_matches(r, name))
}

/// True when any of the terms matches (no terms match nothing).
pub fn node_selector_terms_match(terms: &[NodeSelectorTerm], node: &Node) -> bool {
    terms.iter().any(|t| node_selector_term_matches(t, node))
}

/// True when `toleration` tolerates `taint` (`v1.Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        // Lt/Gt compare integer values (alpha upstream).
        op @ ("Lt" | "Gt") => {
            let (Ok(t), Ok(v)) = (
                toleration.value.as_deref().unwrap_or("").parse::<i64>(),
                taint.value.as_deref().unwrap_or("").parse::<i64>(),
            ) else {
                return false;
            };
            if op == "Lt" { v < t } else { v > t }
        }
        _ => false,
    }
}

/// The first taint with one of `effects` that no toleration tolerates.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        }))
        .unwrap();
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(&labels(&[])));
    }

    #[test]
    fn uncompiled_matching_agrees_with_compiled_selectors() {
        let sets = [
            labels(&[]),
            labels(&[("app", "web")]),
            labels(&[("app", "web"), ("tier", "db")]),
            labels(&[("app", "db"), ("tier", "fe")]),
        ];
        let selectors = [
            json!({}),
            json!({"matchLabels": {"app": "web"}}),
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}),
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
            json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
            json!({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}),
        ];
        for sel in &selectors {
            let ls: LabelSelector = serde_json::from_value(sel.clone()).unwrap();
            let compiled = Selector::from_label_selector(Some(&ls));
            for l in &sets {
                assert_eq!(label_selector_matches(Some(&ls), l), compiled.matches(l), "{sel} {l:?}");
            }
        }
        assert!(!label_selector_matches(None, &sets[1]));
        for map in [
            labels(&[]),
            labels(&[("app", "web")]),
            labels(&[("app", "web"), ("tier", "x")]),
        ] {
            for l in &sets {
                let compiled = Selector::from_map(&map).is_some_and(|s| s.matches(l));
                assert_eq!(map_selector_matches(&map, l), compiled, "{map:?} {l:?}");
            }
        }
    }

    #[test]
    fn conversion_fails_where_upstream_fails_and_canonical_order_ignores_assembly() {
        let ls = |v: serde_json::Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        for bad in [
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        ] {
            assert_eq!(Selector::try_from_label_selector(&ls(bad.clone())), None, "{bad}");
        }
        let good = ls(json!({"matchLabels": {"b": "2"},
                             "matchExpressions": [{"key": "a", "operator": "Exists"}]}));
        let s = Selector::try_from_label_selector(&good).unwrap();
        assert_eq!(s, Selector::from_label_selector(Some(&good)));
        let other = Selector::everything().with_equals("a", "1");
        assert_eq!(
            s.clone().and(&other).and(&s).canonical(),
            other.and(&s).canonical(),
            "order and repeats do not matter"
        );
    }

    #[test]
    fn node_terms_with_gt_and_fields() {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"cores": "8", "zone": "a"}}})).unwrap();
        let term = |v: serde_json::Value| -> NodeSelectorTerm { serde_json::from_value(v).unwrap() };
        assert!(node_selector_term_matches(
            &term(json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]})),
            &node
        ));
        assert!(!node_selector_term_matches(
            &term(json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]})),
            &node
        ));
        assert!(node_selector_term_matches(
            &term(json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})),
            &node
        ));
        assert!(!node_selector_term_matches(&term(json!({})), &node));
    }

    #[test]
    fn tolerations() {
        let taint: Taint = serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"})).unwrap();
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &taint));
        assert!(tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
