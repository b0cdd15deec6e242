//! The last lines a stdio server wrote to stderr, kept per target so an operator can see why
//! it will not start (`/readyz`, `mcpgate check --connect`) without searching the logs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A bounded ring of stderr lines (oldest dropped first). Shared by every process of a target.
#[derive(Debug)]
pub struct StderrTail {
    lines: Mutex<VecDeque<String>>,
    capacity: usize,
}

impl StderrTail {
    /// A ring keeping the last `capacity` lines (0: keeps nothing).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(StderrTail {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
        })
    }

    /// Appends a line, dropping the oldest beyond the capacity.
    pub fn push(&self, line: &str) {
        if self.capacity == 0 {
            return;
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        while lines.len() >= self.capacity {
            lines.pop_front();
        }
        lines.push_back(line.to_owned());
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        let t = StderrTail::new(3);
        for i in 0..5 {
            t.push(&format!("line {i}"));
        }
        assert_eq!(t.lines(), ["line 2", "line 3", "line 4"]);
        let none = StderrTail::new(0);
        none.push("x");
        assert!(none.lines().is_empty());
    }
}
