use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// `input` parses and prints as `expected`.
fn check_ok(input: &str, expected: &str) {
    match FieldSelector::parse(input) {
        Ok(sel) => assert_eq!(sel.to_string(), expected, "{input:?}"),
        Err(e) => panic!("{input:?}: unexpected error: {e}"),
    }
}

/// `input` fails with upstream's message `expected`.
fn check_err(input: &str, expected: &str) {
    match FieldSelector::parse(input) {
        Ok(sel) => panic!("{input:?}: expected an error, parsed {sel}"),
        Err(e) => assert_eq!(e.to_string(), expected, "{input:?}"),
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn parses_and_prints() {
    // Upstream's TestSelectorParse good strings print back unchanged.
    check_ok("x=a,y=b,z=c", "x=a,y=b,z=c");
    check_ok("", "");
    check_ok("x!=a,y=b", "x!=a,y=b");
    check_ok(r"x=a||y\=b", r"x=a||y\=b");
    check_ok(r"x=a\=\=b", r"x=a\=\=b");
    // Deterministic: terms are sorted as written.
    check_ok("x=a,a=x", "a=x,x=a");
    check_ok("a=x,x=a", "a=x,x=a");
    check_ok("x==a", "x=a");
    check_ok(",a=b,,", "a=b");
    check_ok(",", "");
    check_ok("a = b", "a = b");
    check_ok(r"k=\,,k2=v2", r"k2=v2,k=\,");
    check_ok(r"k=\\,k2=v2", r"k2=v2,k=\\");
    check_ok(r"k=\\\,,k2=v2", r"k2=v2,k=\\\,");
    check_ok("함=수,목=록", "목=록,함=수");
    check_ok("=a", "=a");
    check_ok("a=", "a=");
    check_ok("a!=", "a!=");
    check_ok("a=!b", "a=!b");
    check_ok(
        "metadata.name=web-0,status.phase!=Running",
        "metadata.name=web-0,status.phase!=Running",
    );
    check_ok("spec.nodeName=", "spec.nodeName=");
}

#[test]
fn rejects_with_upstream_messages() {
    check_err("x=a||y=b", "invalid field selector: unescaped character in value: 61");
    check_err("x==a==b", "invalid field selector: unescaped character in value: 61");
    check_err("a!==b", "invalid field selector: unescaped character in value: 61");
    check_err("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'");
    check_err("x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'");
    check_err("x in (a,b,c)", "invalid selector: 'x in (a,b,c)'; can't understand 'b'");
    check_err("x", "invalid selector: 'x'; can't understand 'x'");
    check_err(r"k=\", r"invalid field selector: invalid escape sequence: \");
    check_err(r"k=\\\", r"invalid field selector: invalid escape sequence: \");
    check_err(r"k=\a", r"invalid field selector: invalid escape sequence: \a");
    check_err(r"k=\!", r"invalid field selector: invalid escape sequence: \!");
    check_err(r"k=\é", r"invalid field selector: invalid escape sequence: \é");
    // The first bad term in sorted order is reported.
    check_err(r"b=\x,a", r"invalid selector: 'b=\x,a'; can't understand 'a'");
}

#[test]
fn splits_like_upstream() {
    let check = |input: &str, expected: &[&str]| assert_eq!(split_terms(input), expected, "{input:?}");
    check("a", &["a"]);
    check("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]);
    check("a=avalue,b==bvalue,c!=cvalue", &["a=avalue", "b==bvalue", "c!=cvalue"]);
    check("", &[]);
    check("a=a,", &["a=a", ""]);
    check(",a=a", &["", "a=a"]);
    check(r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]);
    check(r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]);
    check(r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]);
    check(r"k=\a\b\", &[r"k=\a\b\"]);
    check(r"k=\", &[r"k=\"]);
    check("함=수,목=록", &["함=수", "목=록"]);

    let check = |term: &str, expected: Option<(&str, &str, &str)>| assert_eq!(split_term(term), expected, "{term:?}");
    check("a=value", Some(("a", "=", "value")));
    check("b==value", Some(("b", "==", "value")));
    check("c!=value", Some(("c", "!=", "value")));
    check("", None);
    check("a", None);
    check(r"k=\,", Some(("k", "=", r"\,")));
    check(r"k=\=", Some(("k", "=", r"\=")));
    check(r"k=\\\a\b\=\,\", Some(("k", "=", r"\\\a\b\=\,\")));
    check("함=수", Some(("함", "=", "수")));
}

#[test]
fn escapes_like_upstream() {
    for (raw, escaped) in [
        ("", ""),
        ("a", "a"),
        ("=", r"\="),
        (",", r"\,"),
        (r"\", r"\\"),
        (r"\=\,\", r"\\\=\\\,\\"),
    ] {
        assert_eq!(escape_value(raw), escaped);
        assert_eq!(unescape_value(escaped), Ok(raw.to_string()));
    }
    for bad in [r"\", r"\\\", r"\a"] {
        assert!(
            matches!(unescape_value(bad), Err(SelectorError::InvalidEscapeSequence(_))),
            "{bad}"
        );
    }
    assert_eq!(unescape_value("a,b"), Err(SelectorError::UnescapedCharacter(',')));
    assert_eq!(
        SelectorError::UnescapedCharacter(',').to_string(),
        "invalid field selector: unescaped character in value: 44"
    );
}

#[test]
fn matches_like_upstream() {
    let fields = set(&[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")]);
    let check = |selector: &str, fields: &BTreeMap<String, String>, expected: bool| {
        let sel = FieldSelector::parse(selector).expect("valid selector");
        assert_eq!(sel.matches(fields), expected, "{selector:?} on {fields:?}");
    };
    check("", &set(&[("x", "y")]), true);
    check("x=y", &set(&[("x", "y")]), true);
    check("x=y,z=w", &set(&[("x", "y"), ("z", "w")]), true);
    check("x!=y,z!=w", &set(&[("x", "z"), ("z", "a")]), true);
    check("notin=in", &set(&[("notin", "in")]), true);
    check("x=y", &set(&[("x", "z")]), false);
    check("x=y,z=w", &set(&[("x", "w"), ("z", "w")]), false);
    check("x!=y,z!=w", &set(&[("x", "z"), ("z", "w")]), false);
    check("foo=bar", &fields, true);
    check("baz=blah", &fields, true);
    check("foo=bar,baz=blah", &fields, true);
    check(r"foo=bar,baz=blah,complex=\=value\\\,\\", &fields, true);
    check("foo=blah", &fields, false);
    check("baz=bar", &fields, false);
    check("foo=bar,foobar=bar,baz=blah", &fields, false);
    // A missing field compares as "".
    check("missing=", &fields, true);
    check("missing!=x", &fields, true);
    check("missing!=", &fields, false);
}

#[test]
fn builds_and_inspects() {
    let one = FieldSelector::one_term_equal("metadata.name", "a,b");
    assert_eq!(one.to_string(), r"metadata.name=a\,b");
    assert!(one.matches(&set(&[("metadata.name", "a,b")])));
    assert!(!one.matches(&set(&[("metadata.name", "a")])));
    assert_eq!(FieldSelector::parse(&one.to_string()), Ok(one));

    let from_set = FieldSelector::from_set(&set(&[("foo", "bar"), ("baz", "blah")]));
    assert!(from_set.matches(&set(&[("foo", "bar"), ("baz", "blah")])));
    assert!(!from_set.matches(&set(&[("foo", "=blah"), ("baz", "blah")])));
    assert!(FieldSelector::from_set(&BTreeMap::new()).is_empty());
    assert!(FieldSelector::everything().is_empty());
    assert!(FieldSelector::parse(",,").expect("empty terms").is_empty());

    let sel = FieldSelector::parse("a!=1,test=b,test=c").expect("valid");
    assert_eq!(sel.requires_exact_match("test"), Some("b"));
    assert_eq!(sel.requires_exact_match("a"), None);
    assert_eq!(sel.requires_exact_match("x"), None);
    assert_eq!(
        FieldSelector::parse("test=")
            .expect("valid")
            .requires_exact_match("test"),
        Some("")
    );
    assert_eq!(sel.requirements().len(), 3);
    assert_eq!("a=1".parse::<FieldSelector>().expect("valid").to_string(), "a=1");
}

#[test]
fn transforms_and_validates() {
    let sel = FieldSelector::parse("a=1,b!=2,drop=").expect("valid");
    let upper = sel
        .transform(|f, v| {
            Ok(if f == "drop" {
                (String::new(), String::new())
            } else {
                (f.to_uppercase(), v.to_string())
            })
        })
        .expect("transform");
    assert_eq!(upper.to_string(), "A=1,B!=2");
    let failed = sel.transform(|f, _| {
        Err(SelectorError::FieldLabelNotSupported {
            label: f.to_string(),
            rejection: FieldLabelRejection::NotSupported,
        })
    });
    assert_eq!(
        failed.map_err(|e| e.to_string()),
        Err("field label not supported: a".to_string())
    );

    assert_eq!(sel.validate_fields(|_| true), Ok(()));
    let err = sel.validate_fields(|f| f != "b").expect_err("b is unsupported");
    assert_eq!(err.to_string(), "field label not supported: b");
    let api: crate::status::ApiError = err.into();
    assert_eq!((api.code, api.reason), (400, "BadRequest"));
}

/// Characters that exercise splitting, operators and escapes.
fn selector_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[=!,\\\\ ]".prop_map(|s| s),
            "[a-z.]{1,3}",
            Just("\\\\".to_string()),
            Just("\\,".to_string()),
            Just("\\=".to_string()),
            any::<char>().prop_map(String::from),
        ],
        0..20,
    )
    .prop_map(|parts| parts.concat())
}

fn requirement() -> impl Strategy<Value = FieldRequirement> {
    (
        "[a-zA-Z0-9._/-]{0,12}",
        prop_oneof![Just(FieldOperator::Equals), Just(FieldOperator::NotEquals)],
        any::<String>(),
    )
        .prop_map(|(field, operator, value)| FieldRequirement { field, operator, value })
}

fn sorted(sel: &FieldSelector) -> Vec<FieldRequirement> {
    let mut reqs = sel.requirements().to_vec();
    reqs.sort();
    reqs
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = FieldSelector::parse(&s);
    }

    #[test]
    fn parsed_selectors_print_and_reparse(s in selector_soup()) {
        if let Ok(sel) = FieldSelector::parse(&s) {
            let printed = sel.to_string();
            let again = FieldSelector::parse(&printed).expect("printed selectors parse");
            prop_assert_eq!(sorted(&again), sorted(&sel), "{:?} printed as {:?}", s, printed);
            let canonical = again.to_string();
            prop_assert_eq!(FieldSelector::parse(&canonical).expect("canonical form parses").to_string(), canonical);
        }
    }

    #[test]
    fn display_reparses_to_the_same_terms(reqs in proptest::collection::vec(requirement(), 0..6)) {
        let sel = FieldSelector::from_requirements(reqs);
        let printed = sel.to_string();
        let again = FieldSelector::parse(&printed).expect("printed selectors parse");
        prop_assert_eq!(sorted(&again), sorted(&sel), "printed as {:?}", printed);
    }

    #[test]
    fn escaping_round_trips(value in any::<String>()) {
        prop_assert_eq!(unescape_value(&escape_value(&value)), Ok(value));
    }
}
