//! Everything printed for a person goes through here: control characters from data (a catalogue
//! title such as `"\e]0;PWNED\a"`, an id with a newline) are shown as visible escapes instead of
//! reaching the terminal, and secrets in addresses (`milvus://user:PASSWORD@host/…`) are redacted.
//! JSON output escapes control characters itself and does not come here.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw: C0 controls, DEL, C1 controls, and the Unicode
/// bidirectional formatting characters (which reorder what follows them on the screen).
fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        c if c.is_control() => true,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c, keep_newlines) {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One value (a cell, an id, a title) for a terminal: every control character, newline and tab
/// included, shown as an escape (`\n`, `\u{1b}`).
pub fn cell(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// A message for a terminal (an error, a warning): secrets redacted, control characters escaped,
/// the message's own line breaks and tabs kept.
pub fn text(s: &str) -> String {
    escape(&redact(s), true).into_owned()
}

/// Replaces the credentials of every `scheme://user:password@host` in `s` with
/// `scheme://user:***@host` (a bare `scheme://token@host` becomes `scheme://***@host`).
pub fn redact(s: &str) -> Cow<'_, str> {
    if !s.contains("://") || !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find("://") {
        let (head, tail) = rest.split_at(k + 3);
        out.push_str(head);
        // The address ends at a space, a quote or the end; its credentials end at its last `@`
        // (a password may itself hold `/`, `:` or `@`).
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(tail.len());
        let addr = &tail[..end];
        match addr.rfind('@') {
            Some(at) => {
                let userinfo = &addr[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&addr[at..]);
            }
            None => out.push_str(addr),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_every_control_character() {
        assert_eq!(cell("Toy Story (1995)"), "Toy Story (1995)");
        assert_eq!(cell("\u{1b}]0;PWNED\u{7}"), "\\u{1b}]0;PWNED\\u{7}");
        assert_eq!(cell("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(cell("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(cell("x\u{7f}\u{9b}y\u{202e}z"), "x\\u{7f}\\u{9b}y\\u{202e}z");
        assert_eq!(cell("Amélie 東京"), "Amélie 東京");
    }

    #[test]
    fn text_keeps_line_breaks_and_redacts() {
        assert_eq!(text("a\nb\u{1b}[2J"), "a\nb\\u{1b}[2J");
        assert_eq!(
            text("bad address \"milvus://admin:s3cr3t@db:19530/recs\": no"),
            "bad address \"milvus://admin:***@db:19530/recs\": no"
        );
        assert_eq!(redact("milvus://tok@db/x"), "milvus://***@db/x");
        assert_eq!(redact("milvus://u:p/a@ss@db/x"), "milvus://u:***@db/x");
        assert_eq!(redact("milvus://db:19530/x"), "milvus://db:19530/x");
        assert_eq!(redact("a@b and http://h/x"), "a@b and http://h/x");
        assert_eq!(
            redact("two: milvus://a:b@h/x milvus://c:d@h2"),
            "two: milvus://a:***@h/x milvus://c:***@h2"
        );
    }
}
