//! Reading the repository's own documents in tests: a file by its path from the repository
//! root, and the cells of a Markdown table row.

/// The text of `path`, relative to the repository root.
pub fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"))
}

/// Splits a Markdown table row on unescaped `|`.
pub fn cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = row.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("cell").push('|');
            }
            '|' => cells.push(String::new()),
            _ => cells.last_mut().expect("cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}
