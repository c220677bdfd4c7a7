//! Kubernetes label selectors: the full string grammar, validation and matching.
//!
//! The grammar is the one `kubectl -l` and the API's `labelSelector` parameter accept:
//! requirements separated by commas, each one of `key`, `!key`, `key=value`, `key==value`,
//! `key!=value`, `key in (v1,v2)` and `key notin (v1,v2)`. Keys and values are checked
//! against the label rules in [`crate::names`].

use std::collections::BTreeMap;
use std::fmt;

use crate::names::{check_label_key, check_label_value};

/// A parsed, validated label selector. Every requirement must hold for a match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One requirement of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key, e.g. `app` or `app.kubernetes.io/name`.
    pub key: String,
    /// How the key's value is tested.
    pub operator: Operator,
    /// Values for `=`, `!=`, `in` and `notin` (one value for the first two).
    pub values: Vec<String>,
}

/// Operator of a [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value`: the key is absent or has another value.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: the key is absent or has none of the values.
    NotIn,
    /// `key`: the key is present.
    Exists,
    /// `!key`: the key is absent.
    DoesNotExist,
}

/// Why a selector string was refused; `column` is 1-based, counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct SelectorError {
    /// What is wrong, as a sentence fragment.
    pub message: String,
    /// 1-based character column in the selector string.
    pub column: usize,
}

impl LabelSelector {
    /// Parses a selector string. An empty string is the selector that matches everything.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        Parser::new(input).selector()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector has no requirement (it matches every object).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    /// True when `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let listed = |v: &String| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(listed),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(listed),
        }
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical form, as sent to the API server.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let first = self.values.first().map_or("", String::as_str);
        match self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Equals => write!(f, "{key}={first}"),
            Operator::NotEquals => write!(f, "{key}!={first}"),
            Operator::In => write!(f, "{key} in ({})", self.values.join(",")),
            Operator::NotIn => write!(f, "{key} notin ({})", self.values.join(",")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Open,
    Close,
    Comma,
    Compare(char),
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "`{s}`"),
            Token::Not => f.write_str("`!`"),
            Token::Equals => f.write_str("`=`"),
            Token::DoubleEquals => f.write_str("`==`"),
            Token::NotEquals => f.write_str("`!=`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::Comma => f.write_str("`,`"),
            Token::Compare(c) => write!(f, "`{c}`"),
            Token::End => f.write_str("the end"),
        }
    }
}

struct Parser {
    /// Tokens with their 1-based character columns.
    tokens: Vec<(Token, usize)>,
    next: usize,
}

impl Parser {
    fn new(input: &str) -> Self {
        let chars: Vec<char> = input.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let column = i + 1;
            let two = chars.get(i + 1).copied();
            let (token, width) = match (c, two) {
                (c, _) if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', _) => (Token::Not, 1),
                ('=', _) => (Token::Equals, 1),
                ('(', _) => (Token::Open, 1),
                (')', _) => (Token::Close, 1),
                (',', _) => (Token::Comma, 1),
                ('<' | '>', _) => (Token::Compare(c), 1),
                _ => {
                    let start = i;
                    while i < chars.len() && !is_special(chars[i]) {
                        i += 1;
                    }
                    tokens.push((Token::Ident(chars[start..i].iter().collect()), column));
                    continue;
                }
            };
            tokens.push((token, column));
            i += width;
        }
        tokens.push((Token::End, chars.len() + 1));
        Parser { tokens, next: 0 }
    }

    fn peek(&self) -> &(Token, usize) {
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> (Token, usize) {
        let t = self.peek().clone();
        self.next += 1;
        t
    }

    fn selector(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().0 == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.bump() {
                (Token::Comma, _) => continue,
                (Token::End, _) => break,
                (t, column) => {
                    return Err(err(
                        column,
                        format!("expected `,` or the end after a requirement, found {t}"),
                    ));
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek().0 == Token::Not {
            self.bump();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: vec![],
            });
        }
        let key = self.key()?;
        let (token, column) = self.peek().clone();
        let (operator, values) = match token {
            Token::Comma | Token::End => (Operator::Exists, vec![]),
            Token::Equals | Token::DoubleEquals => {
                self.bump();
                (Operator::Equals, vec![self.value()?])
            }
            Token::NotEquals => {
                self.bump();
                (Operator::NotEquals, vec![self.value()?])
            }
            Token::Ident(word) if word == "in" || word == "notin" => {
                self.bump();
                let op = if word == "in" {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                (op, self.value_set(&word)?)
            }
            Token::Compare(c) => {
                return Err(err(
                    column,
                    format!(
                        "`{c}` compares numbers and is not supported in label selectors; use `=`, `!=`, `in` or `notin`"
                    ),
                ));
            }
            t => {
                return Err(err(
                    column,
                    format!(
                        "expected `=`, `==`, `!=`, `in`, `notin`, `,` or the end after key `{key}`, found {t}"
                    ),
                ));
            }
        };
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.bump() {
            (Token::Ident(key), column) => {
                check_label_key(&key)
                    .map_err(|r| err(column, format!("label key `{key}` is not valid: {r}")))?;
                Ok(key)
            }
            (t, column) => Err(err(column, format!("expected a label key, found {t}"))),
        }
    }

    /// The value after `=`, `==` or `!=`; may be empty (`key=`).
    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek().clone() {
            (Token::Ident(value), column) => {
                self.bump();
                check_label_value(&value)
                    .map_err(|r| err(column, format!("label value `{value}` is not valid: {r}")))?;
                Ok(value)
            }
            (Token::Comma | Token::End, _) => Ok(String::new()),
            (t, column) => Err(err(column, format!("expected a label value, found {t}"))),
        }
    }

    fn value_set(&mut self, operator: &str) -> Result<Vec<String>, SelectorError> {
        match self.bump() {
            (Token::Open, _) => {}
            (t, column) => {
                return Err(err(
                    column,
                    format!("expected `(` after `{operator}`, found {t}"),
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            match self.bump() {
                (Token::Ident(value), column) => {
                    check_label_value(&value).map_err(|r| {
                        err(column, format!("label value `{value}` is not valid: {r}"))
                    })?;
                    values.push(value);
                    match self.bump() {
                        (Token::Comma, _) => continue,
                        (Token::Close, _) => break,
                        (t, column) => {
                            return Err(err(
                                column,
                                format!("expected `,` or `)` in the value list, found {t}"),
                            ));
                        }
                    }
                }
                (Token::Close, column) if values.is_empty() => {
                    return Err(err(
                        column,
                        format!("`{operator}` needs at least one value, e.g. `{operator} (a,b)`"),
                    ));
                }
                (t, column) => {
                    return Err(err(
                        column,
                        format!("expected a value in the `{operator}` list, found {t}"),
                    ));
                }
            }
        }
        Ok(values)
    }
}

fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '!' | '=' | '(' | ')' | ',' | '<' | '>')
}

fn err(column: usize, message: String) -> SelectorError {
    SelectorError { message, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator_and_prints_canonically() {
        let s = LabelSelector::parse(
            " app = web, tier==front,env!=prod, zone in (a, b),role notin (x),debug,!canary",
        )
        .expect("valid selector");
        assert_eq!(
            s.to_string(),
            "app=web,tier=front,env!=prod,zone in (a,b),role notin (x),debug,!canary"
        );
        let ops: Vec<Operator> = s.requirements().iter().map(|r| r.operator).collect();
        assert_eq!(
            ops,
            [
                Operator::Equals,
                Operator::Equals,
                Operator::NotEquals,
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist
            ]
        );
    }

    #[test]
    fn matches_like_the_api_server() {
        let s = LabelSelector::parse("app=web,env!=prod,zone in (a,b),!canary").expect("valid");
        assert!(s.matches(&labels(&[("app", "web"), ("zone", "a")])));
        assert!(s.matches(&labels(&[("app", "web"), ("zone", "b"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("zone", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("zone", "a"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("zone", "a"), ("canary", "")])));
        let notin = LabelSelector::parse("zone notin (a)").expect("valid");
        assert!(notin.matches(&labels(&[])));
        assert!(!notin.matches(&labels(&[("zone", "a")])));
        assert!(
            LabelSelector::parse("")
                .expect("empty")
                .matches(&labels(&[]))
        );
    }

    #[test]
    fn empty_value_is_allowed_after_equals() {
        let s = LabelSelector::parse("app=,tier").expect("valid");
        assert!(s.matches(&labels(&[("app", ""), ("tier", "x")])));
        assert!(!s.matches(&labels(&[("app", "x"), ("tier", "x")])));
    }

    #[test]
    fn rejects_bad_syntax_with_a_column() {
        let cases = [
            ("app in (a", 10),
            ("app in a", 8),
            ("app in ()", 9),
            ("app=web,", 9),
            ("=web", 1),
            ("app=we b", 8),
            ("app>1", 4),
            ("App_/x=1", 1),
            ("app=-web", 5),
            ("a,,b", 3),
        ];
        for (input, column) in cases {
            let e = LabelSelector::parse(input).expect_err(input);
            assert_eq!(e.column, column, "{input}: {e}");
        }
    }
}
