//! Properties of the whole engine: no input panics, and errors render as
//! upstream's Status.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::status::ApiError;

const POD: GroupVersionKind<'static> = GroupVersionKind {
    group: "",
    version: "v1",
    kind: "Pod",
};

/// Arbitrary JSON, biased towards the keys and directives patches use.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("spec".to_string()),
        Just("containers".to_string()),
        Just("name".to_string()),
        Just("metadata".to_string()),
        Just("finalizers".to_string()),
        Just("env".to_string()),
        Just("$patch".to_string()),
        Just("$retainKeys".to_string()),
        Just("$setElementOrder/containers".to_string()),
        Just("$setElementOrder/finalizers".to_string()),
        Just("$deleteFromPrimitiveList/finalizers".to_string()),
        Just("$deleteFromPrimitiveList".to_string()),
        "[a-z$/]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![Just("delete"), Just("replace"), Just("merge"), Just("a"), Just("b")].prop_map(|s| json!(s)),
        "[a-z]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON patch operation over a small space of paths.
fn arb_op() -> impl Strategy<Value = Value> {
    let path = prop_oneof![
        Just(""),
        Just("/spec"),
        Just("/spec/containers"),
        Just("/spec/containers/0"),
        Just("/spec/containers/-"),
        Just("/spec/containers/0/name"),
        Just("/metadata/finalizers/1"),
        Just("/a~1b"),
        Just("/x/y/z"),
    ];
    let op = prop_oneof![
        Just("add"),
        Just("remove"),
        Just("replace"),
        Just("move"),
        Just("copy"),
        Just("test"),
        Just("bogus")
    ];
    (op, path.clone(), path, prop::option::of(arb_json())).prop_map(|(op, path, from, value)| {
        let mut m = Map::new();
        m.insert("op".into(), json!(op));
        m.insert("path".into(), json!(path));
        m.insert("from".into(), json!(from));
        if let Some(v) = value {
            m.insert("value".into(), v);
        }
        Value::Object(m)
    })
}

fn run_all(original: &Value, body: &[u8]) {
    for result in [
        json_patch(original, body),
        merge_patch(original, body),
        strategic_merge_patch(original, body, &POD),
    ] {
        if let Err(e) = result {
            // Every error renders.
            let api: ApiError = e.clone().into();
            assert_eq!(api.code, e.code());
            assert!(!api.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(original in arb_json(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        run_all(&original, &body);
    }

    #[test]
    fn arbitrary_json_bodies_never_panic(original in arb_json(), patch in arb_json()) {
        let body = serde_json::to_vec(&patch).unwrap_or_default();
        run_all(&original, &body);
    }

    #[test]
    fn arbitrary_json_patches_never_panic(original in arb_json(), ops in prop::collection::vec(arb_op(), 0..6)) {
        let body = serde_json::to_vec(&ops).unwrap_or_default();
        run_all(&original, &body);
    }

    #[test]
    fn merge_patch_of_itself_is_identity(original in arb_json()) {
        // RFC 7386: applying a document without nulls to anything yields
        // the document itself when it is an object.
        let mut doc = original.clone();
        merge::prune_nulls(&mut doc);
        if doc.is_object() {
            let body = serde_json::to_vec(&doc).unwrap_or_default();
            // Compare with the body as parsed: float text need not round-trip.
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            prop_assert_eq!(merge_patch(&json!({}), &body).ok(), parsed);
        }
    }
}

#[test]
fn hostile_bodies() {
    let original = json!({"spec": {"containers": [{"name": "a"}]}});
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(100_000);
    for body in [
        deep_array.as_bytes(),
        deep_object.as_bytes(),
        b"\xff\xfe",
        b"{\"a\":\"\xff\"}",
        b"1e999",
        b"",
    ] {
        run_all(&original, body);
    }
}

#[test]
fn errors_render_as_upstream_status() {
    let cases = [
        (PatchError::bad_request("error decoding patch: x"), 400, "BadRequest"),
        (
            PatchError::TooManyOperations { count: 10_001 },
            413,
            "RequestEntityTooLarge",
        ),
        (PatchError::not_applied("test failed"), 422, "Invalid"),
        (PatchError::ListOfLists, 422, "Invalid"),
        (
            PatchError::BadDirective {
                message: "invalid patch format of retainKeys",
            },
            400,
            "BadRequest",
        ),
        (
            PatchError::strategic("unknown patch type: foo in map: map[]"),
            400,
            "BadRequest",
        ),
        (
            PatchError::UnsupportedKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into(),
            },
            415,
            "UnsupportedMediaType",
        ),
    ];
    for (err, code, reason) in cases {
        let api = ApiError::from(err.clone());
        assert_eq!((api.code, api.reason), (code, reason), "{err:?}");
    }
    let api = ApiError::from(PatchError::not_applied("testing value /a failed"));
    assert_eq!(api.message, INVALID_PATCH_MESSAGE);
}

#[test]
fn patch_types_by_content_type() {
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        Some(PatchType::Apply)
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(
        PatchType::StrategicMerge.content_type(),
        "application/strategic-merge-patch+json"
    );
}
