use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::validation::names::{is_qualified_name, is_valid_label_value};

const VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The detail for a bad key or value comes from `crate::validation::names`,
/// shared with metadata validation; these spell it out where its wording is
/// version-dependent upstream (length limits, empty names).
fn key_detail(key: &str) -> String {
    is_qualified_name(key).join("; ")
}

fn value_detail(value: &str) -> String {
    is_valid_label_value(value).join("; ")
}

/// `input` parses, and prints as `expected`.
fn check_ok(input: &str, expected: &str) {
    match Selector::parse(input) {
        Ok(sel) => assert_eq!(sel.to_string(), expected, "{input:?}"),
        Err(e) => panic!("{input:?}: unexpected error: {e}"),
    }
}

/// `input` fails with upstream's message `expected`.
fn check_err(input: &str, expected: &str) {
    match Selector::parse(input) {
        Ok(sel) => panic!("{input:?}: expected an error, parsed {sel}"),
        Err(e) => assert_eq!(e.to_string(), expected, "{input:?}"),
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn parses_and_prints_canonically() {
    // Upstream's TestSelectorParse and TestSetSelectorParser valid cases.
    check_ok("x=a,y=b,z=c", "x=a,y=b,z=c");
    check_ok("", "");
    check_ok("x!=a,y=b", "x!=a,y=b");
    check_ok("x=", "x=");
    check_ok("x= ", "x=");
    check_ok("x=,z= ", "x=,z=");
    check_ok("x= ,z= ", "x=,z=");
    check_ok("!x", "!x");
    check_ok("x>1", "x>1");
    check_ok("x>1,z<5", "x>1,z<5");
    check_ok("x=a,a=x", "a=x,x=a");
    check_ok("\rx", "x");
    check_ok(
        "this-is-a-dns.domain.com/key-with-dash",
        "this-is-a-dns.domain.com/key-with-dash",
    );
    check_ok(
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
    );
    check_ok(
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
    );
    check_ok("foo  in\t (abc)", "foo in (abc)");
    check_ok("x notin\n (abc)", "x notin (abc)");
    check_ok("x  notin\t\t\t(abc,def)", "x notin (abc,def)");
    check_ok("x in (abc,)", "x in (,abc)");
    check_ok("x in ()", "x in ()");
    check_ok("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()");
    check_ok("x,y in (a)", "x,y in (a)");
    check_ok("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)");
    check_ok("x notin ( )", "x notin ()");
    check_ok("x notin (, a)", "x notin (,a)");
    check_ok("a ", "a");
    check_ok("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)");
    // Beyond upstream's table.
    check_ok("z in (b,a,b)", "z in (a,b)");
    check_ok("x==a", "x==a");
    check_ok("notin=in", "notin=in");
    check_ok("in in (in),notin notin (notin)", "in in (in),notin notin (notin)");
    check_ok("!in", "!in");
    check_ok("b, !a ,c", "!a,b,c");
    check_ok("z,z=1,a", "a,z,z=1");
    check_ok("a in (,b)", "a in (,b)");
    check_ok("a in (,)", "a in ()");
    check_ok("app.kubernetes.io/name=web", "app.kubernetes.io/name=web");
    check_ok(
        &format!("{}={}", "k".repeat(63), "v".repeat(63)),
        &format!("{}={}", "k".repeat(63), "v".repeat(63)),
    );
    check_ok("a \0b=c", "a");
}

#[test]
fn rejects_with_upstream_messages() {
    let rp = "unable to parse requirement: ";
    check_err(
        "x=a||y=b",
        &format!(r#"{rp}values[0][x]: Invalid value: "a||y": {VALUE_REGEX}"#),
    );
    check_err("x==a==b", "found '==', expected: ',' or 'end of string'");
    check_err("!x=a", "found '=', expected: ',' or 'end of string'");
    check_err(
        "x<a",
        &format!(r#"{rp}values[0]: Invalid value: "a": for 'Gt', 'Lt' operators, the value must be an integer"#),
    );
    check_err(
        "x>1.5",
        &format!(r#"{rp}values[0]: Invalid value: "1.5": for 'Gt', 'Lt' operators, the value must be an integer"#),
    );
    check_err(
        "x>-1",
        &format!(r#"{rp}values[0][x]: Invalid value: "-1": {VALUE_REGEX}"#),
    );
    check_err("x,,y", "found ',', expected: identifier after ','");
    check_err(",x,y", "found ',', expected: !, identifier, or 'end of string'");
    check_err(
        "x nott in (y)",
        &format!("{rp}found 'nott', expected: in, notin, =, ==, !=, gt, lt"),
    );
    check_err("a in (xyz),", "found '', expected: identifier after ','");
    check_err("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'");
    check_err("a in (xyz abc)", &format!("{rp}found 'abc', expected: ',' or ')'"));
    check_err("a notin(", &format!("{rp}found '', expected: ',', ')' or identifier"));
    check_err("a (", &format!("{rp}found '(', expected: in, notin, =, ==, !=, gt, lt"));
    check_err("(", "found '(', expected: !, identifier, or 'end of string'");
    check_err("a in (b,,)", &format!("{rp}found ')', expected: ',', or identifier"));
    check_err("a in b", &format!("{rp}found 'b' expected: '('"));
    check_err("a in (b", &format!("{rp}found '', expected: ',' or ')'"));
    check_err("!", &format!("{rp}found '', expected: identifier"));
    check_err("!!a", &format!("{rp}found '!', expected: identifier"));
    check_err("a==(", &format!("{rp}found '(', expected: identifier"));
    check_err("a b", &format!("{rp}found 'b', expected: in, notin, =, ==, !=, gt, lt"));
    check_err("a=b c", "found 'c', expected: ',' or 'end of string'");
    check_err("-a=b", &format!(r#"{rp}<nil>: Invalid value: "-a": {NAME_REGEX}"#));
    check_err(
        &format!("{}=v", "k".repeat(64)),
        &format!(
            r#"{rp}<nil>: Invalid value: "{0}": {1}"#,
            "k".repeat(64),
            key_detail(&"k".repeat(64))
        ),
    );
    check_err(
        "Example.com/a",
        &format!(
            r#"{rp}<nil>: Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        ),
    );
    check_err(
        "x in (-b,-a)",
        &format!(
            r#"{rp}[values[0][x]: Invalid value: "-a": {VALUE_REGEX}, values[1][x]: Invalid value: "-b": {VALUE_REGEX}]"#
        ),
    );
    check_err(
        &format!("x={}", "v".repeat(64)),
        &format!(
            r#"{rp}values[0][x]: Invalid value: "{0}": {1}"#,
            "v".repeat(64),
            value_detail(&"v".repeat(64))
        ),
    );
    check_err(
        "a\0b=c",
        &format!("{rp}found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    );
    check_err("é=1", &format!(r#"{rp}<nil>: Invalid value: "é": {NAME_REGEX}"#));
}

#[test]
fn matches_like_upstream() {
    let check = |selector: &str, labels: &[(&str, &str)], expected: bool| {
        let sel = Selector::parse(selector).expect("valid selector");
        assert_eq!(sel.matches(&set(labels)), expected, "{selector:?} on {labels:?}");
    };
    check("", &[("x", "y")], true);
    check("x=y", &[("x", "y")], true);
    check("x=y,z=w", &[("x", "y"), ("z", "w")], true);
    check("x!=y,z!=w", &[("x", "z"), ("z", "a")], true);
    check("notin=in", &[("notin", "in")], true);
    check("x", &[("x", "z")], true);
    check("!x", &[("y", "z")], true);
    check("x>1", &[("x", "2")], true);
    check("x<1", &[("x", "0")], true);
    check("x=z", &[], false);
    check("x=y", &[("x", "z")], false);
    check("x=y,z=w", &[("x", "w"), ("z", "w")], false);
    check("x!=y,z!=w", &[("x", "z"), ("z", "w")], false);
    check("x", &[("y", "z")], false);
    check("!x", &[("x", "z")], false);
    check("x>1", &[("x", "0")], false);
    check("x<1", &[("x", "2")], false);
    check("foo=bar,foobar=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], false);
    check("x in (foo),y notin (alpha)", &[("x", "foo"), ("y", "baz")], true);
    check("x in (foo),y in (alpha)", &[("x", "foo"), ("y", "baz")], false);
    check("x notin (),y", &[("y", "")], true);
    check("!x,y", &[("y", "")], true);
    check("x notin (),!y", &[("y", "")], false);
    check("x in ()", &[("y", "baz")], false);
    check("x in ()", &[("x", "")], true);
    check("x=", &[("x", "")], true);
    check("x=", &[], false);
    check("x!=", &[], true);
    check("z>1", &[("z", "2")], true);
    check("z>1", &[("z", "v2")], false);
    check("z>1", &[], false);
    check("z<10", &[("z", "-3")], true);
    check("z<10", &[("z", "99999999999999999999")], false);
}

#[test]
fn requirement_constructor() {
    let check = |key: &str, op: Operator, values: &[&str], expected: Result<(), &str>| {
        let got = Requirement::new(key, op, values.iter().map(|v| v.to_string()).collect());
        match expected {
            Ok(()) => assert!(got.is_ok(), "{key} {op:?} {values:?}: {got:?}"),
            Err(msg) => assert_eq!(
                got.map_err(|e| e.to_string()),
                Err(msg.to_string()),
                "{key} {op:?} {values:?}"
            ),
        }
    };
    check(
        "x",
        Operator::In,
        &[],
        Err("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
    );
    check(
        "x",
        Operator::NotIn,
        &[],
        Err("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
    );
    check("x", Operator::In, &["foo"], Ok(()));
    check("x", Operator::NotIn, &["foo"], Ok(()));
    check("x", Operator::Exists, &[], Ok(()));
    check("x", Operator::DoesNotExist, &[], Ok(()));
    check("1foo", Operator::In, &["bar"], Ok(()));
    check("1234", Operator::In, &["bar"], Ok(()));
    check("y", Operator::GreaterThan, &["1"], Ok(()));
    check("z", Operator::LessThan, &["6"], Ok(()));
    check(
        "foo",
        Operator::GreaterThan,
        &["bar"],
        Err(r#"values[0]: Invalid value: "bar": for 'Gt', 'Lt' operators, the value must be an integer"#),
    );
    check(
        "x",
        Operator::GreaterThan,
        &["1", "2"],
        Err(r#"values: Invalid value: []string{"1", "2"}: for 'Gt', 'Lt' operators, exactly one value is required"#),
    );
    check(
        "x",
        Operator::Equals,
        &["a", "b"],
        Err(r#"values: Invalid value: []string{"a", "b"}: exact-match compatibility requires one single value"#),
    );
    check(
        "x",
        Operator::Exists,
        &["a"],
        Err(r#"values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist"#),
    );
    check(
        &"a".repeat(254),
        Operator::Exists,
        &[],
        Err(&format!(
            r#"key: Invalid value: "{0}": {1}"#,
            "a".repeat(254),
            key_detail(&"a".repeat(254))
        )),
    );
    check(
        "",
        Operator::Exists,
        &[],
        Err(&format!(r#"key: Invalid value: "": {}"#, key_detail(""))),
    );
}

#[test]
fn prints_like_upstream() {
    let req = |key: &str, op: Operator, values: &[&str]| {
        Requirement::new(key, op, values.iter().map(|v| v.to_string()).collect()).expect("valid requirement")
    };
    let check = |reqs: Vec<Requirement>, expected: &str| {
        assert_eq!(Selector::from_requirements(reqs).to_string(), expected);
    };
    check(
        vec![
            req("x", Operator::In, &["def", "abc"]),
            req("y", Operator::NotIn, &["jkl"]),
            req("z", Operator::Exists, &[]),
        ],
        "x in (abc,def),y notin (jkl),z",
    );
    check(
        vec![
            req("x", Operator::NotIn, &["abc", "def"]),
            req("y", Operator::NotEquals, &["jkl"]),
            req("z", Operator::DoesNotExist, &[]),
        ],
        "x notin (abc,def),y!=jkl,!z",
    );
    check(
        vec![
            req("x", Operator::NotIn, &["abc"]),
            req("y", Operator::In, &["jkl", "mno"]),
            req("z", Operator::NotIn, &[""]),
        ],
        "x notin (abc),y in (jkl,mno),z notin ()",
    );
    check(
        vec![
            req("x", Operator::Equals, &["abc"]),
            req("y", Operator::DoubleEquals, &["jkl"]),
            req("z", Operator::NotEquals, &["a"]),
            req("z", Operator::Exists, &[]),
        ],
        "x=abc,y==jkl,z!=a,z",
    );
    check(
        vec![
            req("z", Operator::Exists, &[]),
            req("x", Operator::GreaterThan, &["2"]),
            req("y", Operator::LessThan, &["8"]),
        ],
        "x>2,y<8,z",
    );
    let sel = Selector::everything()
        .with_requirement(req("key", Operator::In, &["value"]))
        .with_requirement(req("a", Operator::Exists, &[]));
    assert_eq!(sel.to_string(), "a,key in (value)");
    assert_eq!(
        Selector::nothing()
            .with_requirement(req("a", Operator::Exists, &[]))
            .to_string(),
        ""
    );
}

#[test]
fn everything_nothing_and_exact_match() {
    let labels = set(&[("x", "y")]);
    assert!(Selector::everything().matches(&labels));
    assert!(Selector::everything().is_empty());
    assert!(!Selector::nothing().matches(&labels));
    assert!(!Selector::nothing().is_empty());
    assert!(Selector::nothing().is_nothing());
    assert!(Selector::parse("").expect("empty").is_empty());

    let sel = Selector::parse("a=1,b in (2),c in (3,4),d!=5,e==6").expect("valid");
    assert_eq!(sel.requires_exact_match("a"), Some("1"));
    assert_eq!(sel.requires_exact_match("b"), Some("2"));
    assert_eq!(sel.requires_exact_match("c"), None);
    assert_eq!(sel.requires_exact_match("d"), None);
    assert_eq!(sel.requires_exact_match("e"), Some("6"));
    assert_eq!(sel.requires_exact_match("f"), None);

    let from_set = Selector::from_set(&set(&[("foo", "bar"), ("baz", "blah")]));
    assert_eq!(from_set.to_string(), "baz=blah,foo=bar");
    assert!(from_set.matches(&set(&[("foo", "bar"), ("baz", "blah"), ("x", "y")])));
    assert!(!from_set.matches(&set(&[("foo", "bar")])));
    assert!(Selector::from_set(&BTreeMap::new()).is_empty());
}

#[test]
fn matches_objects_and_other_maps() {
    let sel = Selector::parse("app=web,!canary").expect("valid");
    let check = |sel: &Selector, object: serde_json::Value, expected: bool| {
        let object = object.as_object().cloned().expect("a JSON object");
        assert_eq!(sel.matches_object(&object), expected, "{sel} on {object:?}");
    };
    check(&sel, json!({"metadata": {"labels": {"app": "web"}}}), true);
    check(
        &sel,
        json!({"metadata": {"labels": {"app": "web", "canary": ""}}}),
        false,
    );
    check(&sel, json!({"metadata": {}}), false);
    check(&Selector::parse("!a").expect("valid"), json!({}), true);
    let hash: std::collections::HashMap<String, String> = [("app".to_string(), "web".to_string())].into();
    assert!(sel.matches(&hash));
}

#[test]
fn converts_label_selectors() {
    let check = |value: serde_json::Value, expected: Result<&str, &str>| {
        let got = Selector::from_label_selector_json(Some(&value));
        match expected {
            Ok(s) => assert_eq!(got.map(|sel| sel.to_string()), Ok(s.to_string()), "{value}"),
            Err(msg) => assert_eq!(got.map_err(|e| e.to_string()), Err(msg.to_string()), "{value}"),
        }
    };
    check(json!({}), Ok(""));
    check(json!({"matchLabels": {}, "matchExpressions": []}), Ok(""));
    check(json!({"matchLabels": {"b": "2", "a": "1"}}), Ok("a=1,b=2"));
    check(
        json!({"matchLabels": {"tier": "web"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["a"]},
            {"key": "gpu", "operator": "Exists"},
            {"key": "spot", "operator": "DoesNotExist", "values": []},
        ]}),
        Ok("env in (dev,prod),gpu,!spot,tier=web,zone notin (a)"),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        Err(r#""Gt" is not a valid label selector operator"#),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]}),
        Err(r#""in" is not a valid label selector operator"#),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        Err("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}),
        Err("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        Err(r#"values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist"#),
    );
    check(
        json!({"matchLabels": {"app": "a b"}}),
        Err(&format!(r#"values[0][app]: Invalid value: "a b": {VALUE_REGEX}"#)),
    );
    check(
        json!({"matchExpressions": [{"operator": "Exists"}]}),
        Err(&format!(r#"key: Invalid value: "": {}"#, key_detail(""))),
    );
    check(
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x", "y"]}, {"key": "b", "operator": "Bad"}]}),
        Err(&format!(r#"values[0][a]: Invalid value: "-x": {VALUE_REGEX}"#)),
    );
    assert!(matches!(
        Selector::from_label_selector_json(Some(&json!({"matchLabels": []}))),
        Err(SelectorError::MalformedLabelSelector(_))
    ));
    assert!(matches!(
        Selector::from_label_selector_json(Some(&json!("app=web"))),
        Err(SelectorError::MalformedLabelSelector(_))
    ));

    let nothing = Selector::from_label_selector_json(None).expect("nil selector");
    assert!(nothing.is_nothing() && !nothing.matches(&set(&[])));
    assert!(
        Selector::from_label_selector_json(Some(&json!(null)))
            .expect("null selector")
            .is_nothing()
    );
    let everything = Selector::from_label_selector(Some(&LabelSelector::default())).expect("empty selector");
    assert!(everything.matches(&set(&[("any", "thing")])));

    let typed = LabelSelector {
        match_labels: Some(set(&[("app", "web")])),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "env".into(),
            operator: "NotIn".into(),
            values: Some(vec!["dev".into()]),
        }]),
    };
    let sel = Selector::from_label_selector(Some(&typed)).expect("valid");
    assert!(sel.matches(&set(&[("app", "web")])));
    assert!(!sel.matches(&set(&[("app", "web"), ("env", "dev")])));
    let round_trip: LabelSelector =
        serde_json::from_value(serde_json::to_value(&typed).expect("serialize")).expect("deserialize");
    assert_eq!(round_trip, typed);
}

#[test]
fn selector_errors_become_bad_requests() {
    let err = Selector::parse("a in (b").expect_err("invalid");
    let api: crate::status::ApiError = err.into();
    assert_eq!(api.code, 400);
    assert_eq!(api.reason, "BadRequest");
    assert_eq!(
        api.message,
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
}
