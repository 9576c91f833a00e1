//! The one rule for ids, applied once where ids enter: at import (CSV/TSV, JSON, Parquet, side
//! tables, MovieLens) and at the front ends (HTTP, the shell, `--users` lists).

/// Why `id` is not a valid id, or `None` when it is. An id is non-empty and has no control
/// character (C0 such as NUL, tab, newline and carriage return; DEL; C1): such ids cannot be
/// printed, put on a command line, written one per line or quoted in every backend.
pub fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the id is empty".into());
    }
    let c = id.chars().find(|c| c.is_control())?;
    let shown: String = id.chars().take(40).collect();
    let more = if id.chars().count() > 40 { "…" } else { "" };
    Some(format!(
        "the id {shown:?}{more} contains the control character U+{:04X} ({}); ids must not contain control characters (tab, newline, NUL…)",
        c as u32,
        control_name(c)
    ))
}

fn control_name(c: char) -> &'static str {
    match c {
        '\0' => "NUL",
        '\t' => "tab",
        '\n' => "newline",
        '\r' => "carriage return",
        '\u{1b}' => "escape",
        '\u{7f}' => "DEL",
        c if (c as u32) < 0x20 => "C0 control",
        _ => "C1 control",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        assert_eq!(id_problem("u1"), None);
        assert_eq!(id_problem("Ünïcödé id with spaces"), None);
        assert!(id_problem("").unwrap().contains("empty"));
        for bad in ["a\0b", "a\nb", "a\rb", "a\tb", "\u{1b}[2J", "x\u{7f}", "x\u{85}"] {
            let p = id_problem(bad).unwrap();
            assert!(p.contains("control character"), "{p}");
            assert!(
                !p.contains('\u{1b}') && !p.contains('\n'),
                "the message is printable: {p}"
            );
        }
    }
}
