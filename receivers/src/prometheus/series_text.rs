//! Decoding a label block (`a="1",b="x\"y"`) into names and values, and unescaping help text.
//!
//! This runs once per new series (a cache miss), never for a series the cache already knows, so
//! it favours clarity over speed and may allocate for escaped values.

use std::borrow::Cow;

use super::parser::ErrorKind;

fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_label_rest(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Unescapes a label value: `\\`, `\"` and `\n`; any other backslash sequence is kept as is,
/// as Prometheus does.
fn unescape_value(raw: &[u8]) -> Result<Cow<'_, str>, ErrorKind> {
    let s = std::str::from_utf8(raw).map_err(|_| ErrorKind::InvalidUtf8)?;
    if !raw.contains(&b'\\') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(Cow::Owned(out))
}

/// Unescapes help text: `\\` and `\n`.
pub fn unescape_help(raw: &[u8]) -> Cow<'_, str> {
    let s = String::from_utf8_lossy(raw);
    if !raw.contains(&b'\\') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Calls `f(name, value)` for every pair of a label block (the text between the braces).
/// A trailing comma is allowed, as in the text format.
pub fn for_each_label<'a>(
    block: &'a [u8],
    mut f: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), ErrorKind>,
) -> Result<(), ErrorKind> {
    let mut i = skip_blanks(block, 0);
    while i < block.len() {
        if !is_label_start(block[i]) {
            return Err(ErrorKind::InvalidLabels);
        }
        let start = i;
        while i < block.len() && is_label_rest(block[i]) {
            i += 1;
        }
        // Label names are ASCII by construction.
        let name = std::str::from_utf8(&block[start..i]).map_err(|_| ErrorKind::InvalidLabels)?;
        i = skip_blanks(block, i);
        if block.get(i) != Some(&b'=') {
            return Err(ErrorKind::InvalidLabels);
        }
        i = skip_blanks(block, i + 1);
        if block.get(i) != Some(&b'"') {
            return Err(ErrorKind::InvalidLabels);
        }
        i += 1;
        let v_start = i;
        loop {
            match block.get(i) {
                None => return Err(ErrorKind::UnterminatedLabels),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let value = unescape_value(&block[v_start..i])?;
        f(name, value)?;
        i = skip_blanks(block, i + 1);
        match block.get(i) {
            None => break,
            Some(b',') => i = skip_blanks(block, i + 1),
            Some(_) => return Err(ErrorKind::InvalidLabels),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(block: &str) -> Result<Vec<(String, String)>, ErrorKind> {
        let mut out = Vec::new();
        for_each_label(block.as_bytes(), |n, v| {
            out.push((n.to_owned(), v.into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn pairs_decode_with_escapes() {
        assert_eq!(
            pairs(r#"path="C:\\DIR",error="a\n\"b\"",other="\t\x""#).unwrap(),
            [
                ("path".into(), r"C:\DIR".into()),
                ("error".into(), "a\n\"b\"".into()),
                ("other".into(), r"\t\x".into())
            ]
        );
    }

    #[test]
    fn whitespace_and_a_trailing_comma_are_allowed() {
        assert_eq!(
            pairs(r#" a = "1" , b="2", "#).unwrap(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(pairs("").unwrap(), []);
    }

    #[test]
    fn malformed_blocks_are_rejected() {
        for bad in [
            r#"a"#,
            r#"a="1"b="2""#,
            r#"1a="x""#,
            r#"a=1"#,
            r#"a="1",,b="2""#,
            r#"a-b="1""#,
            r#"a="1"#,
        ] {
            assert!(pairs(bad).is_err(), "{bad:?} should be rejected");
        }
        let mut out = Vec::new();
        let r = for_each_label(b"a=\"\xff\"", |n, v| {
            out.push((n, v));
            Ok(())
        });
        assert_eq!(r, Err(ErrorKind::InvalidUtf8));
    }

    #[test]
    fn help_text_unescapes_backslash_and_newline() {
        assert_eq!(unescape_help(br"a\\b\nc\d"), "a\\b\nc\\d");
        assert_eq!(unescape_help(b"plain"), "plain");
    }
}
