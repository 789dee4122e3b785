//! Round trips for every built-in kind: a JSON object with every field of
//! the kind's OpenAPI schema (`../schema/schema.json`, upstream v1.36's)
//! set to a non-zero value of its type goes to protobuf and back and must
//! come out identical. Fields without a protobuf number must be the ones
//! `schema.json` lists as gaps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::schema::{self, Schema, Special, Ty};

/// How deep recursive types (JSONSchemaProps) are filled.
const MAX_DEPTH: usize = 6;

struct Gen<'a> {
    openapi: &'a Map<String, Value>,
    proto: &'a Schema,
    gaps: BTreeSet<String>,
    /// Fields of the OpenAPI schema with no protobuf field and no gap entry.
    missing: Vec<String>,
    /// Alternates IntOrString between an integer and a string.
    flip: bool,
}

impl Gen<'_> {
    /// The protobuf field for a JSON name, looking through embedded structs.
    fn field(&self, msg: usize, json: &str) -> Option<Ty> {
        let m = &self.proto.messages[msg];
        for f in &m.fields {
            if f.inline {
                if let Ty::Message(inner) = f.ty
                    && let Some(t) = self.field(inner, json)
                {
                    return Some(t);
                }
            } else if f.json == json {
                return Some(f.ty.clone());
            }
        }
        None
    }

    fn short(def: &str) -> String {
        let name = def
            .trim_start_matches("io.k8s.apimachinery.pkg.apis.")
            .trim_start_matches("io.k8s.apiextensions-apiserver.pkg.apis.")
            .trim_start_matches("io.k8s.kube-aggregator.pkg.apis.")
            .trim_start_matches("io.k8s.api.");
        name.to_string()
    }

    fn definition(&mut self, def: &str, msg: usize, depth: usize) -> Value {
        let d = &self.openapi[def];
        if let Some(special) = d.get("special").and_then(Value::as_str) {
            return self.special(special, d, msg, depth);
        }
        let mut out = Map::new();
        let fields = d.get("fields").and_then(Value::as_object).cloned().unwrap_or_default();
        for (name, ty) in fields {
            let type_meta = name == "kind" || name == "apiVersion";
            if depth == 0 && type_meta {
                continue;
            }
            let Some(pty) = self.field(msg, &name) else {
                if type_meta {
                    // Embedded TypeMeta (list items): not in the message.
                    continue;
                }
                let path = format!("{}.{name}", Self::short(def));
                if !self.gaps.contains(&path) {
                    self.missing.push(path);
                }
                continue;
            };
            let ty = ty.as_str().unwrap().split('|').next().unwrap().to_string();
            if let Some(v) = self.value(&ty, &pty, depth + 1) {
                out.insert(name, v);
            }
        }
        Value::Object(out)
    }

    fn special(&mut self, special: &str, d: &Value, msg: usize, depth: usize) -> Value {
        match special {
            "time" => json!("2024-01-02T03:04:05Z"),
            "micro-time" => json!("2024-01-02T03:04:05.123456Z"),
            "quantity" => json!("500m"),
            "int-or-string" => {
                self.flip = !self.flip;
                if self.flip { json!(8080) } else { json!("http") }
            }
            "any" => json!({"a": [1, "x", true, null, {"b": 2.5}]}),
            "schema-or-bool" => json!(true),
            "schema-or-string-array" => json!(["a", "b"]),
            // Go writes an empty array as null: always give one schema.
            "schema-or-array" if depth > MAX_DEPTH => json!([{"type": "string"}, {"type": "integer"}]),
            "schema-or-array" => {
                let of = d["of"].as_str().unwrap();
                // The message of the schema: field 1 of the wrapper.
                match self.proto.messages[msg].field(1).map(|f| f.ty.clone()) {
                    Some(Ty::Message(inner)) => self.definition(of, inner, depth + 1),
                    _ => json!({}),
                }
            }
            other => panic!("unknown special {other}"),
        }
    }

    fn value(&mut self, ty: &str, pty: &Ty, depth: usize) -> Option<Value> {
        if let Some(elem) = ty.strip_prefix("[]") {
            return Some(Value::Array(vec![self.value(elem, pty, depth)?]));
        }
        if let Some(elem) = ty.strip_prefix("map[string]") {
            let vty = match pty {
                Ty::Map(_, v) => (**v).clone(),
                other => other.clone(),
            };
            return Some(json!({"k1": self.value(elem, &vty, depth)?}));
        }
        if let Ty::Message(m) = pty
            && self.proto.messages[*m].special == Special::Duration
        {
            return Some(json!("1h0m0s"));
        }
        Some(match ty {
            "string" => json!("v"),
            "int32" => json!(7),
            "int64" => json!(1_099_511_627_776_i64),
            "boolean" => json!(true),
            "double" => json!(1.5),
            "byte" => json!("AAEC/w=="),
            def => {
                if depth > MAX_DEPTH && def.ends_with("JSONSchemaProps") {
                    return None;
                }
                let Ty::Message(m) = pty else {
                    panic!("{def} is not a message in protobuf");
                };
                self.definition(def, *m, depth)
            }
        })
    }
}

/// Where two values first differ, and how.
fn first_difference(a: &Value, b: &Value, path: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return format!("{path}.{k}: missing, sent {v}"),
                    Some(w) if w != v => return first_difference(v, w, format!("{path}.{k}")),
                    _ => {}
                }
            }
            let extra: Vec<&String> = y.keys().filter(|k| !x.contains_key(*k)).collect();
            format!("{path}: extra fields {extra:?}")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(v, w, format!("{path}[{i}]")))
            .unwrap_or_default(),
        _ => format!("{path}: sent {a}, got {b}"),
    }
}

#[test]
fn every_kind_round_trips_with_every_field() {
    let openapi: Value = serde_json::from_str(include_str!("../schema/schema.json")).unwrap();
    let table: Value = serde_json::from_str(include_str!("schema.json")).unwrap();
    let proto = schema::schema();
    let mut g = Gen {
        openapi: openapi["definitions"].as_object().unwrap(),
        proto,
        gaps: table["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        missing: Vec::new(),
        flip: false,
    };
    let kinds = openapi["kinds"].as_object().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for key in table["kinds"].as_object().unwrap().keys() {
        let (api_version, kind) = key.rsplit_once('/').unwrap();
        let Some(def) = kinds.get(key).and_then(Value::as_str) else {
            continue;
        };
        let msg = proto.kind(api_version, kind).unwrap();
        let mut obj = match g.definition(def, msg, 0) {
            Value::Object(m) => m,
            other => panic!("{key}: {other}"),
        };
        let mut full = Map::new();
        full.insert("apiVersion".into(), json!(api_version));
        full.insert("kind".into(), json!(kind));
        full.append(&mut obj);
        let bytes = match super::encode_object(&full) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{key}: encode: {e}"));
                continue;
            }
        };
        match super::decode_object(&bytes) {
            Ok(back) if back == full => checked += 1,
            Ok(back) => failures.push(format!(
                "{key}: differs at {}",
                first_difference(&Value::Object(full), &Value::Object(back), String::new())
            )),
            Err(e) => failures.push(format!("{key}: decode: {e}")),
        }
    }
    g.missing.sort();
    g.missing.dedup();
    assert!(
        g.missing.is_empty(),
        "fields with no protobuf number and no gap entry: {:?}",
        g.missing
    );
    assert!(
        failures.is_empty(),
        "{} kinds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 150, "only {checked} kinds checked");
}

#[test]
fn zero_values_of_pointer_fields_survive() {
    // Go pointers keep an explicit zero; other scalars' zero is "unset".
    let cases = [
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"replicas": 0, "revisionHistoryLimit": 0, "paused": true,
                        "template": {"spec": {"terminationGracePeriodSeconds": 0,
                                               "automountServiceAccountToken": false,
                                               "enableServiceLinks": false,
                                               "containers": [{"name": "c", "securityContext": {"privileged": false, "runAsUser": 0}}]}}}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"parallelism": 0, "backoffLimit": 0, "suspend": false, "template": {"spec": {"containers": []}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "targetPort": 0}]}}),
    ];
    for c in cases {
        let back = super::decode_object(&super::encode_object(c.as_object().unwrap()).unwrap()).unwrap();
        let mut want = c.clone();
        // An empty repeated field has nothing on the wire.
        if let Some(spec) = want.pointer_mut("/spec/template/spec")
            && spec["containers"] == json!([])
        {
            spec.as_object_mut().unwrap().remove("containers");
        }
        assert_eq!(Value::Object(back), want);
    }
    // A non-pointer zero written by Go is dropped, as JSON's omitempty does.
    let c = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"minReadySeconds": 0, "paused": false}});
    let back = super::decode_object(&super::encode_object(c.as_object().unwrap()).unwrap()).unwrap();
    assert_eq!(
        Value::Object(back),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}})
    );
}
