//! Property tests: no input panics the parser, and printing is canonical.

use proptest::prelude::*;

use super::*;

/// Characters that exercise every token and validation path.
fn selector_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("in".to_string()),
            Just("notin".to_string()),
            "[=!(),<> \t\r\n]".prop_map(|s| s),
            "[a-zA-Z0-9._/-]{1,4}",
            "[\\x00-\\x7f]",
            any::<char>().prop_map(String::from),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn label_key() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}"),
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?",
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn label_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?)?"
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let op = prop_oneof![
        Just(Operator::In),
        Just(Operator::NotIn),
        Just(Operator::Equals),
        Just(Operator::DoubleEquals),
        Just(Operator::NotEquals),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
        Just(Operator::GreaterThan),
        Just(Operator::LessThan),
    ];
    (
        label_key(),
        op,
        proptest::collection::btree_set(label_value(), 1..4),
        "[0-9]{1,6}",
    )
        .prop_map(|(key, op, set, int)| {
            let values = match op {
                Operator::In | Operator::NotIn => set.into_iter().collect(),
                Operator::Exists | Operator::DoesNotExist => Vec::new(),
                Operator::GreaterThan | Operator::LessThan => vec![int],
                _ => set.into_iter().take(1).collect(),
            };
            Requirement::new(key, op, values).expect("generated requirements are valid")
        })
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Selector::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_selector_like_input(s in selector_soup()) {
        if let Ok(sel) = Selector::parse(&s) {
            let printed = sel.to_string();
            prop_assert_eq!(Selector::parse(&printed), Ok(sel), "{:?} printed as {:?}", s, printed);
        }
    }

    #[test]
    fn display_reparses_to_an_equal_selector(reqs in proptest::collection::vec(requirement(), 0..6)) {
        let sel = Selector::from_requirements(reqs);
        let printed = sel.to_string();
        prop_assert_eq!(Selector::parse(&printed), Ok(sel), "printed as {:?}", printed);
    }

    #[test]
    fn a_set_matches_its_own_selector(labels in proptest::collection::btree_map(label_key(), label_value(), 0..5)) {
        prop_assert!(Selector::from_set(&labels).matches(&labels));
        let printed = Selector::from_set(&labels).to_string();
        prop_assert!(Selector::parse(&printed).expect("a valid set prints a valid selector").matches(&labels));
    }
}
