//! Properties over arbitrary JSON: decoding never panics, and its output
//! decodes to itself with nothing left to report.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::GroupVersionKind;
use super::decode;
use super::tests::{CONFIG_MAP, CRD, DEPLOYMENT, EVENT, POD, REVISION, SECRET, SERVICE, WIDGET};

/// Arbitrary JSON, biased towards the keys of pods, deployments, config
/// maps, secrets and CRDs so that walks go deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("metadata".to_string()),
        Just("spec".to_string()),
        Just("template".to_string()),
        Just("containers".to_string()),
        Just("name".to_string()),
        Just("image".to_string()),
        Just("ports".to_string()),
        Just("containerPort".to_string()),
        Just("resources".to_string()),
        Just("limits".to_string()),
        Just("cpu".to_string()),
        Just("labels".to_string()),
        Just("data".to_string()),
        Just("replicas".to_string()),
        Just("creationTimestamp".to_string()),
        Just("targetPort".to_string()),
        Just("versions".to_string()),
        Just("schema".to_string()),
        Just("openAPIV3Schema".to_string()),
        Just("properties".to_string()),
        Just("items".to_string()),
        Just("additionalProperties".to_string()),
        "[a-zA-Z.\\[\\]\"]{0,5}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just("1Gi"),
            Just("2024-01-02T03:04:05Z"),
            Just("aGk="),
            Just("x"),
            Just("")
        ]
        .prop_map(|s| json!(s)),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_kind() -> impl Strategy<Value = GroupVersionKind<'static>> {
    prop_oneof![
        Just(POD),
        Just(DEPLOYMENT),
        Just(CONFIG_MAP),
        Just(SECRET),
        Just(SERVICE),
        Just(CRD),
        Just(EVENT),
        Just(REVISION),
        Just(WIDGET)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No body panics the walker, and what it returns decodes to itself
    /// with nothing left to report.
    #[test]
    fn decoding_never_panics_and_is_idempotent(kind in arb_kind(), body in arb_json(), dups in prop::collection::vec("\\.[a-z.]{0,8}", 0..3)) {
        if let Ok(first) = decode(&kind, body, &dups) {
            let again = decode(&kind, first.object.clone(), &[]);
            prop_assert!(again.is_ok(), "re-decoding failed: {:?}", again);
            if let Ok(again) = again {
                prop_assert_eq!(&again.object, &first.object);
                prop_assert!(again.strict_errors.is_empty(), "{:?}", again.strict_errors);
            }
        }
    }

    /// Wrapped in a body of the right kind, arbitrary JSON under `spec`
    /// still never panics.
    #[test]
    fn nested_bodies_never_panic(kind in arb_kind(), spec in arb_json()) {
        let _ = decode(&kind, json!({"apiVersion": "v1", "kind": kind.kind, "metadata": {"name": "x"}, "spec": spec}), &[]);
    }
}
