//! Static bearer tokens from kube-apiserver's `--token-auth-file`: CSV lines
//! of `token,user,uid[,"group1,group2"]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::UserInfo;

/// A malformed token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {why}")]
    Invalid { path: PathBuf, line: usize, why: String },
}

/// Tokens loaded from a token file.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Reads `token,user,uid[,"group1,group2,..."]` lines (CSV; blank lines
    /// and lines starting with `#` are skipped).
    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, why)| TokenFileError::Invalid {
            path: path.into(),
            line,
            why,
        })
    }

    /// Parses the text of a token file; errors carry the 1-based line.
    pub fn parse(text: &str) -> Result<TokenFile, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line).map_err(|why| (i + 1, why))?;
            if fields.len() < 3 {
                return Err((
                    i + 1,
                    format!("expected token,user,uid[,groups], found {} fields", fields.len()),
                ));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err((i + 1, "token and user must not be empty".into()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                    ..Default::default()
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    /// The user a token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        Some(self.tokens.get(token)?.clone().authenticated())
    }
}

/// Splits one CSV line with `"` quoting (`""` is a literal quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format() {
        let f = TokenFile::parse("# admins\nt1,admin,uid-1,\"system:masters,devs\"\n\nt2,bob,2\n").unwrap();
        let admin = f.authenticate("t1").unwrap();
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.groups, ["system:masters", "devs", "system:authenticated"]);
        assert_eq!(f.authenticate("t2").unwrap().groups, ["system:authenticated"]);
        assert_eq!(f.authenticate("t3"), None);
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(TokenFile::parse("ok,a,1\nshort,a\n").unwrap_err().0, 2);
        assert_eq!(TokenFile::parse("t,\"unterminated,1").unwrap_err().0, 1);
        assert_eq!(TokenFile::parse(",user,1").unwrap_err().0, 1);
    }
}
