//! Character classes of RFC 3261 section 25.1 and a small cursor over header values.
//!
//! Header values reach this module already unfolded, trimmed, UTF-8 and free of control
//! characters (see `parse.rs`), so the grammar here only has to deal with printable text.

use std::fmt;

use crate::error::SyntaxError;

/// `alphanum`.
pub(crate) fn is_alphanum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# token       =  1*(alphanum / "-" / "." / "!" / "%" / "*"
//#                / "_" / "+" / "`" / "'" / "~" )
pub(crate) fn is_token(b: u8) -> bool {
    is_alphanum(b) || b"-.!%*_+`'~".contains(&b)
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# word        =  1*(alphanum / "-" / "." / "!" / "%" / "*" /
//#                "_" / "+" / "`" / "'" / "~" /
//#                "(" / ")" / "<" / ">" /
//#                ":" / "\" / DQUOTE /
//#                "/" / "[" / "]" / "?" /
//#                "{" / "}" )
pub(crate) fn is_word(b: u8) -> bool {
    is_token(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// `unreserved = alphanum / mark`.
pub(crate) fn is_unreserved(b: u8) -> bool {
    is_alphanum(b) || b"-_.!~*'()".contains(&b)
}

/// `reserved`.
pub(crate) fn is_reserved(b: u8) -> bool {
    b";/?:@&=+$,".contains(&b)
}

/// Whether every `%` in `s` starts `% HEXDIG HEXDIG`, and every other byte satisfies
/// `allowed`.
pub(crate) fn is_escaped_text(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// Parses `1*DIGIT` into a `u64`, refusing signs, spaces and overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are legal (RFC 4475 `wsinv` sends `0068`); skip them so that a long
    // run of zeros does not count as overflow.
    let trimmed = s.trim_start_matches('0');
    if trimmed.len() > 20 {
        return None;
    }
    if trimmed.is_empty() {
        return Some(0);
    }
    trimmed.parse().ok()
}

/// A cursor over a header value.
#[derive(Clone, Debug)]
pub(crate) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Steps over `n` bytes (clamped to the end).
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.s.len());
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skips SP and HTAB (folding was turned into SP before), returning whether any were.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `SWS c SWS`, as in SEMI, COLON, EQUAL, SLASH and COMMA. Restores the position if
    /// `c` is not there.
    pub(crate) fn eat_sep(&mut self, c: u8) -> bool {
        let start = self.pos;
        self.skip_ws();
        if self.eat(c) {
            self.skip_ws();
            true
        } else {
            self.pos = start;
            false
        }
    }

    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// `1*token-char`.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token);
        (!t.is_empty()).then_some(t)
    }

    /// A `quoted-string`, returned with its quotes and escapes as written.
    //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
    //# quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    //# qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E
    //#                         / UTF8-NONASCII
    pub(crate) fn quoted_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(&self.s[start..self.pos]);
                }
                b'\\' => {
                    if self.pos + 1 >= b.len() {
                        break;
                    }
                    // The escaped character may be multi-byte UTF-8: step over all of it.
                    let ch_len = self.s[self.pos + 1..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    self.pos += 1 + ch_len;
                }
                _ => self.pos += 1,
            }
        }
        self.pos = start;
        None
    }

    /// `gen-value = token / host / quoted-string`, returned as written.
    pub(crate) fn gen_value(&mut self) -> Option<&'a str> {
        match self.peek()? {
            b'"' => self.quoted_string(),
            b'[' => {
                let start = self.pos;
                let end = self.rest().find(']')?;
                let inner = &self.rest()[1..end];
                inner.parse::<std::net::Ipv6Addr>().ok()?;
                self.pos += end + 1;
                Some(&self.s[start..self.pos])
            }
            _ => self.token(),
        }
    }
}

/// The text of a quoted string without its quotes, escapes undone.
pub(crate) fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether `s` may stand in a header field value: no control characters but HTAB.
pub(crate) fn is_header_text(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || !c.is_control())
}

/// One `generic-param`: `token [ EQUAL gen-value ]`, the value kept as written (a quoted
/// value keeps its quotes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    name: String,
    value: Option<String>,
}

impl Param {
    /// A parameter, if `name` is a token and `value` a token, `[IPv6]` or quoted string.
    pub fn new(name: &str, value: Option<&str>) -> Result<Param, SyntaxError> {
        if !is_token_str(name) {
            return Err(SyntaxError);
        }
        if let Some(v) = value {
            let mut sc = Scanner::new(v);
            if sc.gen_value().is_none() || !sc.is_empty() {
                return Err(SyntaxError);
            }
        }
        Ok(Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as written, quotes included.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The value with quotes and escapes removed.
    pub fn value_unquoted(&self) -> Option<String> {
        self.value.as_deref().map(|v| {
            if v.starts_with('"') {
                unquote(v)
            } else {
                v.to_owned()
            }
        })
    }
}

/// The `;name=value` parameters after a header value, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params(Vec<Param>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses `*( SEMI generic-param )` at the cursor.
    pub(crate) fn parse(sc: &mut Scanner<'_>) -> Option<Params> {
        let mut out = Vec::new();
        while sc.eat_sep(b';') {
            let name = sc.token()?;
            let value = if sc.eat_sep(b'=') {
                Some(sc.gen_value()?.to_owned())
            } else {
                None
            };
            out.push(Param {
                name: name.to_owned(),
                value,
            });
        }
        Some(Params(out))
    }

    /// The first parameter called `name` (case-insensitive): `Some(None)` if it has no value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// Whether a parameter called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces every parameter called `name` with `param`, or appends it.
    pub fn set(&mut self, param: Param) {
        match self
            .0
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&param.name))
        {
            Some(i) => {
                self.0[i] = param;
                let name = self.0[i].name.clone();
                let mut seen = false;
                self.0.retain(|p| {
                    if p.name.eq_ignore_ascii_case(&name) {
                        let keep = !seen;
                        seen = true;
                        keep
                    } else {
                        true
                    }
                });
            }
            None => self.0.push(param),
        }
    }

    /// Removes every parameter called `name`, returning how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before - self.0.len()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            write!(f, ";{}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Splits a header value at top-level commas (outside quoted strings and `<...>`), the
/// `*(COMMA x)` of multi-valued header fields. Each piece is trimmed; an empty piece is
/// kept so that the caller can refuse it.
pub(crate) fn split_commas(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let (mut in_quotes, mut in_angle) = (false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                out.push(s[start..i].trim_matches([' ', '\t']));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(s[start.min(s.len())..].trim_matches([' ', '\t']));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        assert_eq!(parse_digits("0068"), Some(68));
        assert_eq!(parse_digits("000000000000000000000000000001"), Some(1));
        assert_eq!(parse_digits("36893488147419103232"), None);
        assert_eq!(parse_digits("-999"), None);
        assert_eq!(parse_digits(""), None);
        assert_eq!(parse_digits("1 "), None);
    }

    #[test]
    fn quoted() {
        let mut sc = Scanner::new(r#""J Rosenberg \\\"" <x>"#);
        let q = sc.quoted_string().unwrap();
        assert_eq!(unquote(q), r#"J Rosenberg \""#);
        assert_eq!(sc.rest(), " <x>");
        assert!(Scanner::new(r#""open"#).quoted_string().is_none());
        assert!(Scanner::new("\"ends in escape\\").quoted_string().is_none());
        assert_eq!(unquote(&quote(r#"a"b\c"#)), r#"a"b\c"#);
    }

    #[test]
    fn escapes() {
        assert!(is_escaped_text("a%20b", is_unreserved));
        assert!(!is_escaped_text("a%2", is_unreserved));
        assert!(!is_escaped_text("a%", is_unreserved));
        assert!(!is_escaped_text("a%zz", is_unreserved));
    }

    #[test]
    fn commas() {
        assert_eq!(
            split_commas(r#""a, b" <sip:x,y>;p=1 , c"#),
            vec![r#""a, b" <sip:x,y>;p=1"#, "c"]
        );
        assert_eq!(split_commas("a,,b"), vec!["a", "", "b"]);
    }
}
