//! A small plain-text → Markdown converter behind the `convert_to_markdown` tool.
//!
//! What it does, in order:
//! - Line endings are normalized, tabs become four spaces, trailing spaces are trimmed, and the
//!   text is split into blocks at blank lines.
//! - **Title**: the first line becomes `# Title` when it looks like one — at most 80
//!   characters, not starting with a lowercase letter, not ending in `.`, `,`, `;` or `:`, not a
//!   list item, something follows it, and the next line (if in the same block) does not continue
//!   a sentence (start with a lowercase letter).
//! - **Underlined headings**: a line followed by `===` becomes `#`, by `---` becomes `##`.
//! - **Lists**: lines starting with `- `, `* `, `+ ` or `• ` become `- ` items; lines starting
//!   with `1. ` or `1) ` become numbered items; leading indentation is kept for nesting, and an
//!   indented line after an item continues it.
//! - **Quotes** (`>` lines) stay quotes; a line of only `---`, `***` or `___` is a rule.
//! - **Code**: a block whose lines are all indented by four or more spaces becomes a fenced code
//!   block (dedented, fence longer than any backtick run inside).
//! - **Paragraphs**: the other lines of a block are joined into one paragraph.
//! - **Inline**: `http://` and `https://` URLs become `<autolinks>` (trailing punctuation and
//!   unbalanced closing brackets stay outside); characters Markdown would interpret
//!   (`\`, `` ` ``, `*`, `[`, `]`, `<`, `>`, `_` at word edges, a leading `#`) are escaped so the
//!   text renders as written.
//!
//! It deliberately does not guess tables, emphasis or HTML.

/// Converts plain text to Markdown (see the module docs for the rules).
pub fn convert(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n").replace('\t', "    ");
    let lines: Vec<&str> = normalized.lines().map(str::trim_end).collect();

    let mut blocks: Vec<&[&str]> = Vec::new();
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        match (line.is_empty(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                blocks.push(&lines[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        blocks.push(&lines[s..]);
    }

    let mut out = Out::default();
    for (bi, block) in blocks.iter().enumerate() {
        let mut block: &[&str] = block;
        if bi == 0 && is_title(block, blocks.len() > 1) {
            out.push(Seg::Block, format!("# {}", inline(block[0].trim())));
            block = &block[1..];
        }
        if block.is_empty() {
            continue;
        }
        if block.iter().all(|l| indent(l) >= 4) {
            out.push(Seg::Block, code_block(block));
            continue;
        }
        convert_block(block, &mut out);
    }
    let mut s = out.text;
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seg {
    Block,
    ListItem,
    Quote,
}

#[derive(Default)]
struct Out {
    text: String,
    last: Option<Seg>,
}

impl Out {
    fn push(&mut self, seg: Seg, s: String) {
        match self.last {
            None => {}
            Some(last) if last == seg && seg != Seg::Block => self.text.push('\n'),
            Some(_) => self.text.push_str("\n\n"),
        }
        self.text.push_str(&s);
        self.last = Some(seg);
    }

    /// Appends text to the last list item (a continuation line).
    fn continue_item(&mut self, s: &str) {
        self.text.push(' ');
        self.text.push_str(s);
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_title(block: &[&str], more_blocks: bool) -> bool {
    let line = block[0].trim();
    let n = line.chars().count();
    let next = block.get(1);
    (1..=80).contains(&n)
        && (more_blocks || next.is_some())
        && !line.chars().next().is_some_and(char::is_lowercase)
        && !line.ends_with(['.', ',', ';', ':'])
        && line.chars().any(char::is_alphanumeric)
        && list_item(block[0]).is_none()
        && !line.starts_with('>')
        && !is_rule(line)
        && indent(block[0]) < 4
        && !next.is_some_and(|l| l.trim_start().chars().next().is_some_and(char::is_lowercase))
        && next.is_none_or(|l| underline(l).is_none())
}

fn is_rule(line: &str) -> bool {
    let t: String = line.chars().filter(|c| *c != ' ').collect();
    t.len() >= 3 && (t.chars().all(|c| c == '-') || t.chars().all(|c| c == '*') || t.chars().all(|c| c == '_'))
}

/// `Some(1)` for `===` underlines, `Some(2)` for `---`.
fn underline(line: &str) -> Option<u8> {
    let t = line.trim();
    if t.len() >= 3 && t.chars().all(|c| c == '=') {
        Some(1)
    } else if t.len() >= 3 && t.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

/// A list item: (indentation, marker to write, rest of the line).
fn list_item(line: &str) -> Option<(usize, String, &str)> {
    let ind = indent(line);
    let t = &line[ind..];
    for bullet in ["- ", "* ", "+ ", "• "] {
        if let Some(rest) = t.strip_prefix(bullet) {
            return Some((ind, "-".to_owned(), rest.trim_start()));
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let after = &t[digits..];
        for delim in [". ", ") "] {
            if let Some(rest) = after.strip_prefix(delim) {
                return Some((ind, format!("{}.", &t[..digits]), rest.trim_start()));
            }
        }
    }
    None
}

fn convert_block(block: &[&str], out: &mut Out) {
    let mut para: Vec<String> = Vec::new();
    let flush = |para: &mut Vec<String>, out: &mut Out| {
        if !para.is_empty() {
            let mut text = para.join(" ");
            if text.starts_with('#') {
                text.insert(0, '\\');
            }
            out.push(Seg::Block, text);
            para.clear();
        }
    };
    let mut i = 0;
    let mut in_item = false;
    while i < block.len() {
        let line = block[i];
        let trimmed = line.trim();
        if let Some(level) = block.get(i + 1).and_then(|next| underline(next))
            && list_item(line).is_none()
            && !is_rule(trimmed)
        {
            flush(&mut para, out);
            let hashes = if level == 1 { "#" } else { "##" };
            out.push(Seg::Block, format!("{hashes} {}", inline(trimmed)));
            in_item = false;
            i += 2;
            continue;
        }
        if is_rule(trimmed) {
            flush(&mut para, out);
            out.push(Seg::Block, "---".to_owned());
            in_item = false;
        } else if let Some((ind, marker, rest)) = list_item(line) {
            flush(&mut para, out);
            out.push(Seg::ListItem, format!("{}{marker} {}", " ".repeat(ind), inline(rest)));
            in_item = true;
        } else if let Some(rest) = trimmed.strip_prefix('>') {
            flush(&mut para, out);
            out.push(Seg::Quote, format!("> {}", inline(rest.trim_start())));
            in_item = false;
        } else if in_item && indent(line) > 0 {
            out.continue_item(&inline(trimmed));
        } else {
            in_item = false;
            para.push(inline(trimmed));
        }
        i += 1;
    }
    flush(&mut para, out);
}

fn code_block(block: &[&str]) -> String {
    let min = block.iter().map(|l| indent(l)).min().unwrap_or(0);
    let mut longest = 0;
    for l in block {
        let mut run = 0;
        for c in l.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    let mut s = fence.clone();
    s.push('\n');
    for l in block {
        s.push_str(&l[min..]);
        s.push('\n');
    }
    s.push_str(&fence);
    s
}

/// Escapes Markdown syntax and turns bare URLs into autolinks.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let rest = &s[i..];
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if at_word_start && (rest.starts_with("http://") || rest.starts_with("https://")) {
            let len = url_len(rest);
            if len > rest.find("://").unwrap_or(0) + 3 {
                out.push('<');
                out.push_str(&rest[..len]);
                out.push('>');
                i += len;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '_' => {
                let prev = s[..i].chars().next_back();
                let next = rest[1..].chars().next();
                let inside = prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric);
                if !inside {
                    out.push('\\');
                }
                out.push('_');
            }
            _ => out.push(c),
        }
        i += c.len_utf8();
    }
    out
}

/// The length of the URL at the start of `s`, without trailing punctuation.
fn url_len(s: &str) -> usize {
    let mut end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`'))
        .unwrap_or(s.len());
    loop {
        let url = &s[..end];
        let Some(last) = url.chars().next_back() else {
            return 0;
        };
        let unbalanced =
            |open: char, close: char| last == close && url.matches(close).count() > url.matches(open).count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            end -= last.len_utf8();
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::convert;

    #[test]
    fn title_lists_paragraphs_and_links() {
        let input = "Release notes\n\nThis release adds a gateway.\nIt is fast.\n\n- first item\n* second item\n1. one\n2) two\n\nSee https://example.com/docs.";
        let expected = "# Release notes\n\nThis release adds a gateway. It is fast.\n\n- first item\n- second item\n1. one\n2. two\n\nSee <https://example.com/docs>.\n";
        assert_eq!(convert(input), expected);
    }

    #[test]
    fn sentences_are_not_titles() {
        assert_eq!(convert("just one line"), "just one line\n");
        assert_eq!(convert("Hello world"), "Hello world\n");
        assert_eq!(
            convert("This is a sentence.\n\nAnother."),
            "This is a sentence.\n\nAnother.\n"
        );
        assert_eq!(
            convert("A line that wraps\nonto the next line"),
            "A line that wraps onto the next line\n"
        );
    }

    #[test]
    fn title_directly_followed_by_a_list() {
        assert_eq!(
            convert("Shopping list\n- eggs\n- milk"),
            "# Shopping list\n\n- eggs\n- milk\n"
        );
    }

    #[test]
    fn escapes_markdown_syntax() {
        assert_eq!(
            convert("2*3*4 = 24 and [x] <b> snake_case _under_ `tick` #tag"),
            "2\\*3\\*4 = 24 and \\[x\\] \\<b\\> snake_case \\_under\\_ \\`tick\\` #tag\n"
        );
        assert_eq!(convert("#1 priority."), "\\#1 priority.\n");
    }

    #[test]
    fn urls_with_brackets_and_query() {
        assert_eq!(
            convert("(see https://en.wikipedia.org/wiki/Rust_(language)) or http://a.b/?q=1&r=2!"),
            "(see <https://en.wikipedia.org/wiki/Rust_(language)>) or <http://a.b/?q=1&r=2>!\n"
        );
        assert_eq!(convert("bare https:// alone"), "bare https:// alone\n");
    }

    #[test]
    fn underlines_rules_quotes_code_and_nesting() {
        let input = "Intro text here.\n\nSection\n=======\nBody.\n\nSub\n---\n\n> quoted\n> more\n\n***\n\n    fn main() {\n        println!(\"```\");\n    }\n\n- item\n  continued here\n  - nested";
        let expected = "Intro text here.\n\n# Section\n\nBody.\n\n## Sub\n\n> quoted\n> more\n\n---\n\n````\nfn main() {\n    println!(\"```\");\n}\n````\n\n- item continued here\n  - nested\n";
        assert_eq!(convert(input), expected);
    }

    #[test]
    fn empty_and_crlf() {
        assert_eq!(convert(""), "");
        assert_eq!(convert("\r\n\r\n"), "");
        assert_eq!(convert("Title\r\n\r\nbody"), "# Title\n\nbody\n");
    }
}
