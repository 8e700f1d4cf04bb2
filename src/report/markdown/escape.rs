//! Escaping for text from the image (paths, labels, descriptions, history), which an attacker
//! who controls the image chooses.

/// Escapes `text` for Markdown inline content, GFM table cells and raw HTML alike.
///
/// Characters that Markdown or HTML give a meaning become numeric character references,
/// which CommonMark and HTML both decode to the character itself. Control characters and the
/// invisible Unicode formatting characters that reorder or hide text (bidi overrides,
/// zero-width characters) are shown as `\n`, `\u{202E}` and so on, so the text cannot start
/// a new block or look different from what it is. Callers put the result inside a line,
/// never at the start of one.
// NOTE: GitHub still links `@name` mentions and bare URLs in the decoded text; only a code
// span or block stops that.
pub fn inline(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match visible(c) {
            Some(shown) => shown.chars().for_each(|c| push_inline(&mut escaped, c)),
            None => push_inline(&mut escaped, c),
        }
    }
    escaped
}

fn push_inline(escaped: &mut String, c: char) {
    match c {
        '&' => escaped.push_str("&amp;"),
        '<' => escaped.push_str("&lt;"),
        '>' => escaped.push_str("&gt;"),
        // Emphasis, code spans, links, table cells, strikethrough, GitHub's math, and the
        // backslash that would escape the next character.
        '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
            escaped.push_str(&format!("&#{};", u32::from(c)));
        }
        c => escaped.push(c),
    }
}

/// Escapes `text` for one line of a fenced code block, where Markdown and HTML have no
/// meaning: only line breaks and invisible formatting characters are made visible.
pub fn code_line(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match visible(c) {
            Some(shown) => escaped.push_str(&shown),
            None => escaped.push(c),
        }
    }
    escaped
}

/// Returns a fence of backticks longer than any run of backticks in `lines`, so no line can
/// close the code block early.
pub fn code_fence<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let longest = lines
        .into_iter()
        .flat_map(|line| line.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// Returns how to show an invisible or line-breaking character, or `None` for any other.
fn visible(c: char) -> Option<String> {
    match c {
        '\n' => Some("\\n".to_string()),
        '\r' => Some("\\r".to_string()),
        '\t' => Some("\\t".to_string()),
        c if c.is_control() => Some(format!("\\x{:02x}", u32::from(c))),
        // Bidi marks, embeddings, overrides and isolates; zero-width space, joiners and
        // the word joiner; the line and paragraph separators; the byte order mark.
        '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{061C}' => Some(format!("\\u{{{:04X}}}", u32::from(c))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_escapes_html_and_markdown() {
        assert_eq!(
            inline("/x/<script>alert(1)</script>|"),
            "/x/&lt;script&gt;alert(1)&lt;/script&gt;&#124;"
        );
        assert_eq!(inline("a `b` *c*"), "a &#96;b&#96; &#42;c&#42;");
        assert_eq!(inline("[x](http://e)"), "&#91;x&#93;(http://e)");
    }

    #[test]
    fn inline_shows_line_breaks_and_bidi() {
        assert_eq!(inline("a\n# b"), "a&#92;n# b");
        assert_eq!(inline("x\u{202E}y"), "x&#92;u{202E}y");
    }

    #[test]
    fn code_fence_outgrows_backticks() {
        assert_eq!(code_fence(["/bin/sh", "/a"]), "```");
        assert_eq!(code_fence(["/x/````y", "z"]), "`````");
    }

    #[test]
    fn code_line_keeps_markup() {
        assert_eq!(code_line("/x/<b>|`\n"), "/x/<b>|`\\n");
    }
}
