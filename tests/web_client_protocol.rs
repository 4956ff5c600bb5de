//! The embedded web client (`src/web/*.js`) speaks only the server's protocol. Every message
//! `type` it switches on is one the server sends (an `S→C` row of the README's protocol tables,
//! whose examples `tests/signaling_readme.rs` parses with the server's own message enums) or one
//! the mesh relay carries (`C→peer` rows); every error code it special-cases is a server error
//! code, typed (`ErrorCode`, `MediaErrorCode`) and documented (the README's error-code tables),
//! or a device code the client makes itself (`devices.js`). Dead branches for messages no server
//! sends fail here.
//!
//! The JavaScript is read as text by a small tokenizer (strings, comments, template literals and
//! regular expressions are told apart). What counts as a check: `switch (x.type)` and
//! `switch (…code)` cases, `===`/`!==` comparisons with a string, and `SET.has(…)` of a
//! `new Set([...])` of strings. Server messages are named `m`, `message` or `msg` in the client
//! (RTCStats reports, also with a `type`, are `s`), codes `code` or `….code`.

mod support;

use chorus::protocol::{ErrorCode, MediaErrorCode};
use std::collections::{BTreeMap, BTreeSet};
use support::readme::{cells, read};

/// Names the client gives a server message (the receiver of `.type`).
const MESSAGE_NAMES: &[&str] = &["m", "message", "msg"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Punct(String),
}

/// A token and the line it starts on.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits JavaScript into tokens, dropping comments and the text of regular expressions and
/// template literals (the expressions inside `${…}` are tokenized).
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    out: &'a mut Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    /// Whether a `/` here starts a regular expression (not a division).
    fn regex_allowed(&self) -> bool {
        match self.out.last().map(|t| &t.tok) {
            None => true,
            Some(Tok::Punct(p)) => !matches!(p.as_str(), ")" | "]" | "}"),
            Some(Tok::Word(w)) => matches!(w.as_str(), "return" | "typeof" | "case" | "in"),
            Some(Tok::Str(_)) => false,
        }
    }

    /// Tokens until the end, or until the `}` that closes a template's `${` (consumed).
    fn run(&mut self, in_template: bool) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                _ if c.is_whitespace() => {
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '/' if self.peek(1) == Some('*') => {
                    self.pos += 2;
                    while self.peek(0).is_some()
                        && !(self.peek(0) == Some('*') && self.peek(1) == Some('/'))
                    {
                        self.bump();
                    }
                    self.pos += 2;
                }
                '/' if self.regex_allowed() => self.skip_regex(),
                '\'' | '"' => {
                    let text = self.quoted(c);
                    self.push(Tok::Str(text), line);
                }
                '`' => {
                    self.bump();
                    self.template();
                    self.push(Tok::Str(String::new()), line);
                }
                _ if c.is_alphanumeric() || c == '_' || c == '$' => {
                    let mut word = String::new();
                    while let Some(c) = self
                        .peek(0)
                        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    {
                        word.push(c);
                        self.bump();
                    }
                    self.push(Tok::Word(word), line);
                }
                _ => {
                    if in_template && c == '}' && depth == 0 {
                        self.bump();
                        return;
                    }
                    match c {
                        '{' => depth += 1,
                        '}' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    let rest: String = self.chars[self.pos..].iter().take(3).collect();
                    let op = ["===", "!==", "==", "!=", "=>", "?."]
                        .into_iter()
                        .find(|op| rest.starts_with(op))
                        .map_or_else(|| c.to_string(), str::to_owned);
                    for _ in 0..op.chars().count() {
                        self.bump();
                    }
                    self.push(Tok::Punct(op), line);
                }
            }
        }
    }

    fn quoted(&mut self, quote: char) -> String {
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    if let Some(escaped) = self.bump() {
                        text.push(escaped);
                    }
                }
                _ if c == quote => break,
                _ => text.push(c),
            }
        }
        text
    }

    /// The rest of a template literal (after its opening backtick).
    fn template(&mut self) {
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '`' => return,
                '$' if self.peek(0) == Some('{') => {
                    self.bump();
                    self.run(true);
                }
                _ => {}
            }
        }
    }

    fn skip_regex(&mut self) {
        self.bump();
        let mut in_class = false;
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => break,
                '\n' => break,
                _ => {}
            }
        }
        while self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.bump();
        }
        self.push(Tok::Punct("/regex/".into()), self.line);
    }
}

fn tokenize(source: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut lexer = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        out: &mut out,
    };
    lexer.run(false);
    out
}

/// What a checked string is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    MessageType,
    ErrorCode,
}

/// One string the client compares a message type or an error code with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Check {
    kind: Kind,
    value: String,
    file: String,
    line: usize,
}

fn word(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    }
}

fn is_punct(t: Option<&Token>, p: &str) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(q)) if q == p)
}

/// What the member expression ending at token `end` (`code`, `m.type`, `a.b.code`) holds, if
/// it is a message type or an error code. `typeof x.type` is neither.
fn subject_ending_at(tokens: &[Token], end: usize) -> Option<Kind> {
    let field = word(tokens.get(end))?;
    let receiver = (end >= 2
        && (is_punct(tokens.get(end - 1), ".") || is_punct(tokens.get(end - 1), "?.")))
    .then(|| word(tokens.get(end - 2)))
    .flatten();
    let mut start = end;
    while start >= 2
        && (is_punct(tokens.get(start - 1), ".") || is_punct(tokens.get(start - 1), "?."))
        && word(tokens.get(start - 2)).is_some()
    {
        start -= 2;
    }
    if start >= 1 && word(tokens.get(start - 1)) == Some("typeof") {
        return None;
    }
    match (field, receiver) {
        ("type", Some(r)) if MESSAGE_NAMES.contains(&r) => Some(Kind::MessageType),
        ("code", _) => Some(Kind::ErrorCode),
        _ => None,
    }
}

/// What the member expression starting at token `start` holds (for `'x' === m.type`).
fn subject_starting_at(tokens: &[Token], start: usize) -> Option<Kind> {
    let mut end = start;
    word(tokens.get(end))?;
    while (is_punct(tokens.get(end + 1), ".") || is_punct(tokens.get(end + 1), "?."))
        && word(tokens.get(end + 2)).is_some()
    {
        end += 2;
    }
    subject_ending_at(tokens, end)
}

/// The index of the token that closes the bracket opened at `open`.
fn closing(tokens: &[Token], open: usize) -> Option<usize> {
    let (o, c) = match &tokens.get(open)?.tok {
        Tok::Punct(p) if p == "(" => ("(", ")"),
        Tok::Punct(p) if p == "[" => ("[", "]"),
        Tok::Punct(p) if p == "{" => ("{", "}"),
        _ => return None,
    };
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        if is_punct(Some(t), o) {
            depth += 1;
        } else if is_punct(Some(t), c) {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// A string the client compares with a message type or an error code, and its line.
type Found = (Kind, String, usize);

/// `const NAME = new Set([...strings])`: each set's strings and their lines, by name.
fn string_sets(tokens: &[Token]) -> BTreeMap<String, Vec<(String, usize)>> {
    let mut sets = BTreeMap::new();
    for i in 0..tokens.len() {
        if word(tokens.get(i + 2)) == Some("new")
            && word(tokens.get(i + 3)) == Some("Set")
            && is_punct(tokens.get(i + 1), "=")
            && is_punct(tokens.get(i + 5), "[")
        {
            let (Some(name), Some(end)) = (word(tokens.get(i)), closing(tokens, i + 5)) else {
                continue;
            };
            let strings = tokens[i + 5..end]
                .iter()
                .filter_map(|t| match &t.tok {
                    Tok::Str(s) => Some((s.clone(), t.line)),
                    _ => None,
                })
                .collect();
            sets.insert(name.to_owned(), strings);
        }
    }
    sets
}

/// `switch (subject) { case 'x': ... }` at token `at`: the cases of its own block.
fn switch_cases(tokens: &[Token], at: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let Some(close) = closing(tokens, at + 1) else {
        return found;
    };
    let (Some(kind), Some(end)) = (
        subject_ending_at(tokens, close - 1),
        closing(tokens, close + 1),
    ) else {
        return found;
    };
    let mut depth = 0usize;
    for j in close + 1..end {
        match &tokens[j].tok {
            Tok::Punct(p) if p == "{" => depth += 1,
            Tok::Punct(p) if p == "}" => depth -= 1,
            Tok::Word(c) if c == "case" && depth == 1 => {
                if let Some(Tok::Str(value)) = tokens.get(j + 1).map(|t| &t.tok) {
                    found.push((kind, value.clone(), tokens[j + 1].line));
                }
            }
            _ => {}
        }
    }
    found
}

/// `subject === 'x'` or `'x' !== subject` around the operator at token `at`.
fn comparison(tokens: &[Token], at: usize) -> Vec<Found> {
    let line = tokens[at].line;
    let before = at.checked_sub(1);
    let mut found = Vec::new();
    if let (Some(Tok::Str(value)), Some(kind)) = (
        tokens.get(at + 1).map(|t| &t.tok),
        before.and_then(|e| subject_ending_at(tokens, e)),
    ) {
        found.push((kind, value.clone(), line));
    }
    if let (Some(Tok::Str(value)), Some(kind)) = (
        before.and_then(|e| tokens.get(e)).map(|t| &t.tok),
        subject_starting_at(tokens, at + 1),
    ) {
        found.push((kind, value.clone(), line));
    }
    found
}

/// Every message-type and error-code check in one JavaScript file.
fn checks_in(file: &str, source: &str) -> Vec<Check> {
    let tokens = tokenize(source);
    let sets = string_sets(&tokens);
    let mut found: Vec<Found> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match &token.tok {
            Tok::Word(w) if w == "switch" => found.extend(switch_cases(&tokens, i)),
            Tok::Punct(op) if matches!(op.as_str(), "===" | "!==" | "==" | "!=") => {
                found.extend(comparison(&tokens, i));
            }
            // SET.has(subject)
            Tok::Word(name)
                if sets.contains_key(name)
                    && is_punct(tokens.get(i + 1), ".")
                    && word(tokens.get(i + 2)) == Some("has") =>
            {
                let kind = closing(&tokens, i + 3).and_then(|c| subject_ending_at(&tokens, c - 1));
                if let Some(kind) = kind {
                    found.extend(sets[name].iter().map(|(v, line)| (kind, v.clone(), *line)));
                }
            }
            _ => {}
        }
    }
    let mut checks: Vec<Check> = found
        .into_iter()
        .map(|(kind, value, line)| Check {
            kind,
            value,
            file: file.to_owned(),
            line,
        })
        .collect();
    checks.sort();
    checks.dedup();
    checks
}

/// The codes the client makes itself in `devices.js`: strings it returns, or assigns to a
/// `….code` or a `…Error` field (`result.micError = 'insecure'`).
fn device_codes(source: &str) -> BTreeSet<String> {
    let tokens = tokenize(source);
    let mut codes = BTreeSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let Tok::Str(value) = &t.tok else { continue };
        let Some(before) = i.checked_sub(1).and_then(|b| tokens.get(b)) else {
            continue;
        };
        let made = match &before.tok {
            Tok::Word(w) => w == "return",
            Tok::Punct(p) if p == "=" => word(i.checked_sub(2).and_then(|b| tokens.get(b)))
                .is_some_and(|target| target == "code" || target.ends_with("Error")),
            _ => false,
        };
        if made {
            codes.insert(value.clone());
        }
    }
    codes
}

/// A backticked cell's text: `` `x` `` → `x`.
fn backticked(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

/// The protocol as the README documents it: the types a server or the mesh relay sends, and
/// the error codes (the error-code tables and the media errors).
struct Documented {
    types: BTreeSet<String>,
    codes: BTreeSet<String>,
}

fn documented(readme: &str) -> Documented {
    let mut types = BTreeSet::new();
    let mut codes = BTreeSet::new();
    let mut table_of_codes = false;
    let mut in_media_errors = false;
    for line in readme.lines() {
        if line.starts_with('|') {
            let row = cells(line);
            if row.first().is_some_and(|c| c == "code") {
                table_of_codes = true;
                continue;
            }
            let Some(first) = row.first().and_then(|c| backticked(c)) else {
                continue;
            };
            if table_of_codes {
                codes.insert(first.to_owned());
            } else if row.get(1).is_some_and(|d| d == "S→C" || d == "C→peer") {
                types.insert(first.to_owned());
            }
            continue;
        }
        table_of_codes = false;
        if line.starts_with("* **") || line.starts_with('#') || line.trim().is_empty() {
            in_media_errors = line.starts_with("* **Media errors**");
        }
        if in_media_errors {
            for (n, part) in line.split('`').enumerate() {
                let code_like =
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '-');
                if n % 2 == 1 && code_like && part != "error" {
                    codes.insert(part.to_owned());
                }
            }
        }
    }
    Documented { types, codes }
}

/// Every check in the client's modules.
fn client_checks() -> Vec<Check> {
    let dir = format!("{}/src/web", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".js"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|file| checks_in(file, &read(&format!("src/web/{file}"))))
        .collect()
}

/// The checks that are neither a documented message type, nor a documented error code or a
/// device code.
fn unknown(checks: &[Check], documented: &Documented, device: &BTreeSet<String>) -> Vec<String> {
    checks
        .iter()
        .filter(|c| match c.kind {
            Kind::MessageType => !documented.types.contains(&c.value),
            Kind::ErrorCode => !documented.codes.contains(&c.value) && !device.contains(&c.value),
        })
        .map(|c| format!("{}:{}: {:?} `{}`", c.file, c.line, c.kind, c.value))
        .collect()
}

#[test]
fn the_client_handles_only_server_message_types_and_documented_error_codes() {
    let mut documented = documented(&read("README.md"));
    // A code counts when the server has it typed as well as documented.
    let typed: BTreeSet<&str> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(MediaErrorCode::ALL.iter().map(|c| c.as_str()))
        .collect();
    documented.codes.retain(|c| typed.contains(c.as_str()));
    // The README must have been read, or this test would pass on nothing.
    for (set, value) in [
        (&documented.types, "track-published"),
        (&documented.types, "call-hangup"),
        (&documented.codes, "room-closed"),
        (&documented.codes, "media-failed"),
    ] {
        assert!(set.contains(value), "{value} not found in the README");
    }
    let device = device_codes(&read("src/web/devices.js"));
    assert!(
        device.contains("permission-denied") && device.contains("insecure"),
        "device codes: {device:?}"
    );

    let checks = client_checks();
    // The scan must see the client's dispatch, or this test would pass on nothing.
    let seen = |kind, value: &str| checks.iter().any(|c| c.kind == kind && c.value == value);
    for (kind, value) in [
        (Kind::MessageType, "joined"),
        (Kind::MessageType, "track-published"),
        (Kind::MessageType, "offer"),
        (Kind::ErrorCode, "media-failed"),
        (Kind::ErrorCode, "bad-token"),
        (Kind::ErrorCode, "no-common-codec"),
    ] {
        assert!(
            seen(kind, value),
            "the scan missed {kind:?} {value}: {checks:#?}"
        );
    }
    let unknown = unknown(&checks, &documented, &device);
    assert!(
        unknown.is_empty(),
        "the web client handles message types or error codes the server never sends:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_scan_catches_a_bogus_type_and_code_however_written() {
    let documented = documented(&read("README.md"));
    let device = device_codes(&read("src/web/devices.js"));
    let source = r#"
        // switch (m.type) { case 'in-a-comment': }
        const GONE = new Set(['room-closed', 'bogus-set-code']);
        const url = `${m.type === 'bogus-in-template' ? 'a' : 'b'}`;
        const re = /'not-a-string'/;
        function onMessage(m) {
          switch (m.type) {
            case 'joined': break;
            case 'call-ended': break;
            default: switch (m.code) { case 'bogus-nested-code': break; }
          }
          if (typeof m.type === 'string' && 'removed' === m.type) return;
          if (GONE.has(m.code) || code !== 'bogus-code' || s.type === 'inbound-rtp') return;
        }
    "#;
    let checks = checks_in("bogus.js", source);
    let mut unknown = unknown(&checks, &documented, &device);
    unknown.sort();
    assert_eq!(
        unknown,
        [
            "bogus.js:10: ErrorCode `bogus-nested-code`",
            "bogus.js:12: MessageType `removed`",
            "bogus.js:13: ErrorCode `bogus-code`",
            "bogus.js:3: ErrorCode `bogus-set-code`",
            "bogus.js:4: MessageType `bogus-in-template`",
            "bogus.js:9: MessageType `call-ended`",
        ]
    );
}
