//! Tiny glob patterns for names: `*` matches any run of characters, `?` one character.

/// A compiled name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Compiles a pattern.
    pub fn new(p: &str) -> Self {
        Glob(p.to_owned())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does `name` match the whole pattern?
    pub fn matches(&self, name: &str) -> bool {
        // Names are nearly always ASCII: match bytes then, with no allocation.
        if self.0.is_ascii() && name.is_ascii() {
            return glob_match(self.0.as_bytes(), name.as_bytes(), b'*', b'?');
        }
        let p: Vec<char> = self.0.chars().collect();
        let n: Vec<char> = name.chars().collect();
        glob_match(&p, &n, '*', '?')
    }
}

/// `*` matches any run, `?` one element; backtracks to the last `*` only.
fn glob_match<T: PartialEq + Copy>(p: &[T], n: &[T], any: T, one: T) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == one || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == any {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn matching() {
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("convert_*").matches("convert_to_markdown"));
        assert!(!Glob::new("convert_*").matches("xconvert_"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(Glob::new("*_admin*").matches("db_admin_drop"));
        assert!(!Glob::new("echo").matches("echo2"));
        assert!(Glob::new("é*").matches("éa") && !Glob::new("?").matches("éé"));
    }
}
