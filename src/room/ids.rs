//! Names of things in a room: server-generated peer IDs (random 128-bit, 32 hex digits), and the
//! validation of client-chosen peer IDs, room names and display names. Pure functions; no state.

/// Longest peer ID, room name or display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A fresh random 128-bit peer ID as 32 lowercase hex digits.
pub fn generate_peer_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A client-chosen peer ID: 1–64 of `[A-Za-z0-9_-]`.
pub fn is_valid_peer_id(id: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A room name: 1–64 of `[A-Za-z0-9_.-]`.
pub fn is_valid_room_name(room: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A display name, trimmed; `None` when empty, longer than 64 characters, containing control
/// or bidirectional-override characters (which can make a name read as another, e.g. U+202E),
/// or made only of invisible characters (zero-width spaces and the like).
pub fn normalize_display_name(name: &str) -> Option<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || is_bidi_control(c))
        || name.chars().all(|c| c.is_whitespace() || is_invisible(c))
    {
        return None;
    }
    Some(name.to_owned())
}

/// Unicode bidirectional formatting characters (embeddings, overrides, isolates, marks).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: Unicode's default-ignorable code points, plus the blank
/// Hangul fillers and the braille blank that render as empty space.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_128_bit_hex_and_valid_peer_ids() {
        let a = generate_peer_id();
        let b = generate_peer_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(is_valid_peer_id(&a));
    }

    #[test]
    fn peer_id_rules() {
        assert!(is_valid_peer_id("A"));
        assert!(is_valid_peer_id("k3j_x-9"));
        assert!(is_valid_peer_id(&"x".repeat(64)));
        assert!(!is_valid_peer_id(""));
        assert!(!is_valid_peer_id(&"x".repeat(65)));
        assert!(!is_valid_peer_id("a b"));
        assert!(!is_valid_peer_id("a/b"));
        assert!(!is_valid_peer_id("ä"));
    }

    #[test]
    fn room_and_display_names() {
        assert!(is_valid_room_name("team.standup-2"));
        assert!(!is_valid_room_name("a room"));
        assert!(!is_valid_room_name(""));
        assert_eq!(normalize_display_name("  Zoë "), Some("Zoë".to_owned()));
        assert_eq!(normalize_display_name("   "), None);
        assert_eq!(normalize_display_name("a\nb"), None);
        assert_eq!(
            normalize_display_name(&"é".repeat(64)),
            Some("é".repeat(64))
        );
        assert_eq!(normalize_display_name(&"é".repeat(65)), None);
    }

    #[test]
    fn bidi_controls_and_invisible_only_names_are_refused() {
        assert_eq!(normalize_display_name("admin\u{202E}gpj.exe"), None);
        assert_eq!(normalize_display_name("\u{2067}Bob"), None);
        assert_eq!(normalize_display_name("\u{200B}\u{200B}"), None);
        assert_eq!(normalize_display_name("\u{FEFF} \u{2060}\u{3164}"), None);
        // Invisible characters inside a visible name are left alone (emoji sequences use them).
        assert_eq!(
            normalize_display_name("Ana\u{200D}🧑\u{FE0F}"),
            Some("Ana\u{200D}🧑\u{FE0F}".to_owned())
        );
        assert_eq!(normalize_display_name("عمر"), Some("عمر".to_owned()));
    }
}
