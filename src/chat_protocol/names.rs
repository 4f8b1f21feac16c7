//! The rules for names: what may be a name, and when two names are the same.

use std::borrow::Cow;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Nothing left after trimming.
    Empty,
    /// Over [`MAX_NAME_CHARS`] characters.
    TooLong,
    /// Contains control characters, or invisible and direction-changing ones that would let
    /// one name pose as another. The zero-width joiner and the emoji presentation selector
    /// are allowed only inside emoji sequences.
    BadCharacters,
    /// Someone in the room has this name, or one that looks the same.
    Taken,
    /// The room's shared store (Redis, with `--redis`) cannot be reached to claim the name.
    Unavailable,
}

impl NameError {
    /// The reason shown to the user.
    pub fn reason(self) -> Cow<'static, str> {
        match self {
            NameError::Empty => "a name needs at least one visible character".into(),
            NameError::TooLong => {
                format!("a name may have at most {MAX_NAME_CHARS} characters").into()
            }
            NameError::BadCharacters => {
                "a name may not contain control or invisible characters".into()
            }
            NameError::Taken => "that name is taken: pick another".into(),
            NameError::Unavailable => {
                "the chat cannot reach its shared store right now: try again in a moment".into()
            }
        }
    }
}

/// Checks a requested name and returns it trimmed.
pub fn clean_name(raw: &str) -> Result<&str, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    // Count characters without walking more than needed: a 10,000-character name stops here.
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        return Err(NameError::TooLong);
    }
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let allowed = match c {
            // A zero-width joiner only between two emoji (the first may carry its
            // presentation selector): 👩🏽‍⚕️, 🏳️‍🌈, ❤️‍🔥. Elsewhere it would hide inside text.
            ZWJ => before.is_some_and(|b| is_emoji(b) || b == VS16) && after.is_some_and(is_emoji),
            // The emoji presentation selector only right after an emoji, or in a keycap (1️⃣).
            VS16 => {
                before.is_some_and(is_emoji)
                    || (before.is_some_and(|b| matches!(b, '0'..='9' | '#' | '*'))
                        && after == Some(KEYCAP))
            }
            c => !c.is_control() && !is_invisible(c),
        };
        if !allowed {
            return Err(NameError::BadCharacters);
        }
    }
    Ok(name)
}

/// ZERO WIDTH JOINER: glues emoji into one picture.
const ZWJ: char = '\u{200D}';
/// VARIATION SELECTOR-16: asks for the emoji (coloured) form of the character before it.
const VS16: char = '\u{FE0F}';
/// COMBINING ENCLOSING KEYCAP, as in 1️⃣ (`1`, U+FE0F, U+20E3).
const KEYCAP: char = '\u{20E3}';

/// Characters that are emoji, or can be shown as emoji with U+FE0F: the blocks that hold
/// them and the few emoji outside those blocks, as ranges rather than a per-character table.
/// A range may hold a symbol that is not an emoji; that only lets a joiner or selector stand
/// next to a visible symbol, never next to a letter or another invisible character.
fn is_emoji(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}'                             // © ®
        | '\u{203C}' | '\u{2049}'                           // ‼ ⁉
        | '\u{2122}' | '\u{2139}'                           // ™ ℹ
        | '\u{2194}'..='\u{21AA}'                           // arrows: ↔ ↕ ↩ ↪
        | '\u{231A}'..='\u{23FF}'                           // technical: ⌚ ⌛ ⏩ ⏰
        | '\u{24C2}'                                        // Ⓜ
        | '\u{25AA}'..='\u{25FE}'                           // geometric shapes: ▪ ▶ ◀ ◼
        | '\u{2600}'..='\u{27BF}'                           // symbols, dingbats: ☠ ♀ ⚕ ✈ ❤
        | '\u{2934}' | '\u{2935}'                           // ⤴ ⤵
        | '\u{2B05}'..='\u{2B55}'                           // ⬅ ⬆ ⬛ ⭐ ⭕
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}' // 〰 〽 ㊗ ㊙
        | '\u{1F000}'..='\u{1FAFF}'                         // pictographs, skin tones, flags
    )
}

/// Zero-width characters and bidirectional controls (Unicode category Cf, the ones seen in
/// spoofing): they render as nothing or reorder text.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}')
}

/// The key under which a name must be unique: case-folded, with full-width forms and the
/// common Cyrillic and Greek look-alikes of Latin letters mapped to Latin, and inner runs of
/// whitespace collapsed. "Alice", "ALICE", "Аlice" (Cyrillic А) and "Ａｌｉｃｅ" share one key.
/// This is a small, explicit table, not the whole Unicode confusables list.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut last_space = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = fold_lookalike(c);
        if c.is_whitespace() {
            if !last_space {
                key.push(' ');
            }
            last_space = true;
        } else {
            key.push(c);
            last_space = false;
        }
    }
    key
}

fn fold_lookalike(c: char) -> char {
    // Full-width ASCII (U+FF01..U+FF5E) sits at a fixed offset from ASCII.
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
        return ascii.to_ascii_lowercase();
    }
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ѡ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{3000}' => ' ',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert_eq!(clean_name("  alice "), Ok("alice"));
        assert_eq!(clean_name("   "), Err(NameError::Empty));
        let too_long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(clean_name(&too_long), Err(NameError::TooLong));
        assert_eq!(
            NameError::TooLong.reason(),
            "a name may have at most 32 characters"
        );
        assert_eq!(clean_name(&"é".repeat(32)), Ok("é".repeat(32).as_str()));
        assert_eq!(clean_name("a\u{7}b"), Err(NameError::BadCharacters));
        assert_eq!(clean_name("ali\u{200B}ce"), Err(NameError::BadCharacters));
        assert_eq!(clean_name("\u{202E}ecila"), Err(NameError::BadCharacters));
    }

    #[test]
    fn emoji_sequences_with_joiners_are_names() {
        for name in [
            "\u{1F469}\u{1F3FD}\u{200D}\u{2695}\u{FE0F}", // 👩🏽‍⚕️ health worker, skin tone
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}", // 👨‍👩‍👧‍👦 family
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",         // 🏳️‍🌈 rainbow flag
            "\u{2764}\u{FE0F}\u{200D}\u{1F525}",          // ❤️‍🔥 heart on fire
            "\u{1F3F4}\u{200D}\u{2620}\u{FE0F}",          // 🏴‍☠️ pirate flag
            "\u{1F9D1}\u{1F3FB}\u{200D}\u{1F91D}\u{200D}\u{1F9D1}\u{1F3FF}", // 🧑🏻‍🤝‍🧑🏿
            "\u{1F441}\u{FE0F}\u{200D}\u{1F5E8}\u{FE0F}", // 👁️‍🗨️ eye in speech bubble
            "dr \u{1F469}\u{1F3FD}\u{200D}\u{2695}\u{FE0F} ann", // inside a name
            "\u{2600}\u{FE0F}",                           // ☀️
            "1\u{FE0F}\u{20E3} club",                     // 1️⃣ keycap
        ] {
            assert_eq!(clean_name(name), Ok(name), "{name}");
        }
    }

    #[test]
    fn joiners_and_selectors_outside_emoji_are_refused() {
        for name in [
            "a\u{200D}b",                         // between letters
            "\u{200D}\u{1F469}",                  // leading
            "\u{1F469}\u{200D}",                  // trailing
            "\u{1F468}\u{200D}\u{200D}\u{1F469}", // two in a row
            "a\u{200D}\u{1F469}",                 // after a letter
            "\u{1F469}\u{200D}b",                 // before a letter
            "\u{1F469} \u{200D}\u{1F469}",        // after a space
            "\u{200D}",                           // alone
            "a\u{FE0F}",                          // selector after a letter
            "\u{FE0F}\u{1F469}",                  // selector first
            "\u{1F469}\u{FE0F}\u{FE0F}",          // selector after a selector
            "1\u{FE0F}",                          // a digit without the keycap
            "ali\u{FE0E}ce",                      // the text selector stays refused
            "ali\u{200C}ce",                      // so does the non-joiner
        ] {
            assert_eq!(clean_name(name), Err(NameError::BadCharacters), "{name:?}");
        }
    }

    #[test]
    fn lookalikes_share_a_key() {
        let key = name_key("alice");
        for other in [
            "Alice",
            "ALICE",
            "\u{410}lice",
            "\u{FF21}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}",
        ] {
            assert_eq!(name_key(other), key, "{other}");
        }
        assert_eq!(name_key("a  b"), name_key("a\u{3000}b"));
        assert_ne!(name_key("alice"), name_key("alicia"));
    }
}
