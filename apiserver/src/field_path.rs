//! A field's path inside a JSON body (`spec.containers[0].image`), kept as
//! links on the stack while a body is walked and written out only when it is
//! needed (a duplicate field, a strict or type error): most bodies have none,
//! and formatting every field's path would cost a string per field.
//!
//! The body parser records duplicate fields with it and the schema walk
//! matches them against its own paths, so both must write paths the same
//! way: this is the one writer.

/// A path from the root of a body.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldPath<'a> {
    /// The body itself; written as the empty string.
    Root,
    /// A member: `parent.key`, or just `key` when the parent writes as empty.
    Key(&'a FieldPath<'a>, &'a str),
    /// An element: `parent[i]`.
    Index(&'a FieldPath<'a>, usize),
}

impl FieldPath<'_> {
    /// The path as upstream's strict-decoding errors print it.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// Appends the path to `out`.
    pub(crate) fn write(&self, out: &mut String) {
        match self {
            FieldPath::Root => {}
            FieldPath::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            FieldPath::Index(parent, i) => {
                parent.write(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn members_join_with_dots_and_elements_take_brackets() {
        let root = FieldPath::Root;
        assert_eq!(root.render(), "");
        let spec = FieldPath::Key(&root, "spec");
        let containers = FieldPath::Key(&spec, "containers");
        let first = FieldPath::Index(&containers, 0);
        let image = FieldPath::Key(&first, "image");
        assert_eq!(image.render(), "spec.containers[0].image");
        let top_list = FieldPath::Index(&root, 3);
        assert_eq!(FieldPath::Key(&top_list, "k").render(), "[3].k");
    }

    #[test]
    fn empty_keys_write_as_upstream_would_join_them() {
        let root = FieldPath::Root;
        let m = FieldPath::Key(&root, "m");
        let empty = FieldPath::Key(&m, "");
        assert_eq!(FieldPath::Key(&empty, "a").render(), "m..a");
        assert_eq!(FieldPath::Key(&root, "").render(), "");
    }
}
