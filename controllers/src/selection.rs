//! The `--controllers` flag: which controllers run, with
//! kube-controller-manager's semantics. `*` turns on every controller that
//! is on by default, `foo` turns on `foo`, `-foo` turns it off; the first
//! entry naming a controller wins, and a controller named by no entry runs
//! only if `*` is present and it is on by default. Names are the upstream
//! ones (`replicaset-controller`) or their aliases (`replicaset`).

/// A `--controllers` value that names no known controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not in the list of known controllers")]
pub struct UnknownController(pub String);

/// A parsed `--controllers` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    entries: Vec<String>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            entries: vec!["*".into()],
        }
    }
}

impl Selection {
    /// Parses the comma-separated entries; every name must be known
    /// (`known` yields each controller's name and aliases).
    pub fn parse<'a>(entries: &[String], known: impl Fn(&str) -> bool + 'a) -> Result<Selection, UnknownController> {
        let mut out = Vec::new();
        for entry in entries
            .iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let name = entry.strip_prefix('-').unwrap_or(entry);
            if name != "*" && !known(name) {
                return Err(UnknownController(entry.to_string()));
            }
            out.push(entry.to_string());
        }
        Ok(Selection { entries: out })
    }

    /// Whether the controller known as any of `names` runs.
    pub fn is_enabled(&self, names: &[&str], disabled_by_default: bool) -> bool {
        let mut star = false;
        for entry in &self.entries {
            if names.contains(&entry.as_str()) {
                return true;
            }
            if let Some(off) = entry.strip_prefix('-')
                && names.contains(&off)
            {
                return false;
            }
            if entry == "*" {
                star = true;
            }
        }
        star && !disabled_by_default
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KNOWN: &[&str] = &[
        "replicaset-controller",
        "replicaset",
        "deployment-controller",
        "deployment",
        "bootstrap-signer-controller",
    ];

    fn parse(s: &str) -> Result<Selection, UnknownController> {
        let entries: Vec<String> = vec![s.to_string()];
        Selection::parse(&entries, |n| KNOWN.contains(&n))
    }

    fn check(flag: &str, names: &[&str], off_by_default: bool, expected: bool) {
        let sel = parse(flag).unwrap();
        assert_eq!(
            sel.is_enabled(names, off_by_default),
            expected,
            "--controllers={flag} {names:?}"
        );
    }

    #[test]
    fn star_name_and_minus() {
        let rs = &["replicaset-controller", "replicaset"];
        let bs = &["bootstrap-signer-controller"];
        check("*", rs, false, true);
        check("*", bs, true, false);
        check("*,bootstrap-signer-controller", bs, true, true);
        check("*,-replicaset", rs, false, false);
        check("-replicaset,*", rs, false, false);
        check("replicaset-controller", rs, false, true);
        check("deployment", rs, false, false);
        check("", rs, false, false);
        check("replicaset,-replicaset", rs, false, true);
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!(parse("*,-nope").unwrap_err(), UnknownController("-nope".into()));
        assert_eq!(
            parse("bogus").unwrap_err().to_string(),
            "\"bogus\" is not in the list of known controllers"
        );
    }

    #[test]
    fn default_is_star() {
        assert!(Selection::default().is_enabled(&["replicaset"], false));
    }
}
