//! Lexer and recursive-descent parser for the `labelSelector` syntax.
//!
//! Follows the structure of upstream's `Lexer` and `Parser` closely, because
//! clients see its quirks: which token an error names, that `in`/`notin` are
//! ordinary values inside `(...)` and after `=`, that `a in (b,,)` is an error
//! while `a in (,b)` is not, and that a NUL byte ends the input.

use std::collections::BTreeSet;

use super::{Operator, Requirement, key_error};
use crate::selector::{RequirementError, SelectorError};
use crate::validation::FieldErrors;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Never produced for real input (every single special byte is a token),
    /// kept for parity with upstream.
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The token a literal stands for, if any (`in`, `notin` and the symbols).
fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next byte, or 0 at the end (so a NUL byte reads like the end).
    fn read(&mut self) -> u8 {
        match self.src.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    /// `src[start..end]`; token boundaries are ASCII, so always a char boundary.
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or_default()
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let ch = self.read();
            if ch == 0 {
                break before;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break before;
            }
        };
        let lit = self.slice(start, end);
        (
            literal_token(lit.as_bytes()).unwrap_or(Token::Identifier),
            lit.to_string(),
        )
    }

    /// The longest run of special bytes that is a token (`!=` over `!`).
    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            let buffer = &self.src.as_bytes()[start..self.pos];
            if let Some(tok) = literal_token(buffer) {
                last = Some((tok, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((tok, end)) => (tok, self.slice(start, end).to_string()),
            None => (
                Token::Error,
                format!("error expected: keyword found '{}'", self.slice(start, self.pos)),
            ),
        }
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn peek(&self, ctx: Context) -> (Token, &str) {
        let (tok, lit) = self
            .items
            .get(self.position)
            .map_or((Token::EndOfString, ""), |(t, l)| (*t, l.as_str()));
        match tok {
            Token::In | Token::NotIn if ctx == Context::Values => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        let (tok, lit) = self.peek(ctx);
        (tok, lit.to_string())
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let item = self.lookahead(ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement().map_err(SelectorError::LabelRequirement)?);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(syntax(format!("found '{l2}', expected: identifier after ','")));
                            }
                        }
                        _ => return Err(syntax(format!("found '{l}', expected: ',' or 'end of string'"))),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, RequirementError> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        let operator = match operator {
            Some(op @ (Operator::Exists | Operator::DoesNotExist)) => {
                return Requirement::validated(key, op, Vec::new()).map_err(RequirementError::Invalid);
            }
            _ => self.parse_operator()?,
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::validated(key, operator, values.into_iter().collect()).map_err(RequirementError::Invalid)
    }

    /// The key, and `Exists`/`DoesNotExist` when no operator follows it.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), RequirementError> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(RequirementError::Syntax(format!("found '{lit}', expected: identifier")));
        }
        // Upstream validates the key here with a nil field path.
        if let Some(e) = key_error(&lit, "<nil>") {
            return Err(RequirementError::Invalid(FieldErrors(vec![e])));
        }
        let (next, _) = self.peek(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, RequirementError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(RequirementError::Syntax(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    /// `( v1, v2, ... )`; empty entries are the empty value.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(RequirementError::Syntax(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(RequirementError::Syntax(format!("found '{lit}', expected: ')'")));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(RequirementError::Syntax(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let mut values = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    values.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => {
                            return Err(RequirementError::Syntax(format!(
                                "found '{lit2}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let (tok2, _) = self.peek(Context::Values);
                    if tok2 == Token::ClosedPar {
                        values.insert(String::new());
                        return Ok(values);
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        values.insert(String::new());
                    }
                }
                _ => {
                    return Err(RequirementError::Syntax(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    /// The one value after `=`, `==`, `!=`, `>` or `<`; none means `""`.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let (tok, _) = self.peek(Context::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(BTreeSet::from([lit]));
        }
        Err(RequirementError::Syntax(format!("found '{lit}', expected: identifier")))
    }
}

fn syntax(message: String) -> SelectorError {
    SelectorError::LabelSyntax(message)
}

/// Tokens up to and including the first end of string.
fn scan(selector: &str) -> Vec<(Token, String)> {
    let mut lexer = Lexer { src: selector, pos: 0 };
    let mut items = Vec::new();
    loop {
        let item = lexer.lex();
        let end = item.0 == Token::EndOfString;
        items.push(item);
        if end {
            return items;
        }
    }
}

/// Parses `selector` into requirements, in input order.
pub(super) fn parse(selector: &str) -> Result<Vec<Requirement>, SelectorError> {
    Parser {
        items: scan(selector),
        position: 0,
    }
    .parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer_tokens() {
        let check = |input: &str, expected: &[(Token, &str)]| {
            let got = scan(input);
            let got: Vec<(Token, &str)> = got.iter().map(|(t, l)| (*t, l.as_str())).collect();
            let mut want = expected.to_vec();
            want.push((Token::EndOfString, ""));
            assert_eq!(got, want, "{input:?}");
        };
        use Token::*;
        check("", &[]);
        check(",", &[(Comma, ",")]);
        check("notin", &[(NotIn, "notin")]);
        check("in", &[(In, "in")]);
        check("=", &[(Equals, "=")]);
        check("==", &[(DoubleEquals, "==")]);
        check(">", &[(GreaterThan, ">")]);
        check("<", &[(LessThan, "<")]);
        check("!", &[(DoesNotExist, "!")]);
        check("!=", &[(NotEquals, "!=")]);
        check("(", &[(OpenPar, "(")]);
        check(")", &[(ClosedPar, ")")]);
        check("~", &[(Identifier, "~")]);
        check("||", &[(Identifier, "||")]);
        check(
            "key in ( value )",
            &[
                (Identifier, "key"),
                (In, "in"),
                (OpenPar, "("),
                (Identifier, "value"),
                (ClosedPar, ")"),
            ],
        );
        check(
            "== != (), = notin",
            &[
                (DoubleEquals, "=="),
                (NotEquals, "!="),
                (OpenPar, "("),
                (ClosedPar, ")"),
                (Comma, ","),
                (Equals, "="),
                (NotIn, "notin"),
            ],
        );
        check("key>2", &[(Identifier, "key"), (GreaterThan, ">"), (Identifier, "2")]);
        check("!==(", &[(NotEquals, "!="), (Equals, "="), (OpenPar, "(")]);
        check("=!", &[(Equals, "="), (DoesNotExist, "!")]);
        check("\r\n\tx\t", &[(Identifier, "x")]);
        check("日本=語", &[(Identifier, "日本"), (Equals, "="), (Identifier, "語")]);
        // A NUL byte ends an identifier; at the start of a token it ends the input.
        check("a\0b", &[(Identifier, "a"), (Identifier, "b")]);
        check("a \0b", &[(Identifier, "a")]);
    }
}
