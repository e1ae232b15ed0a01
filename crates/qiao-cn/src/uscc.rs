//! Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from a
//! 31-symbol alphabet; the 18th is a check character over the first 17.

/// The code alphabet in value order (no I, O, Z, S, V).
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights 3^i mod 31 for positions 1..=17.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a code is not a valid USCC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsccError {
    /// Not 18 characters.
    Length(usize),
    /// A character outside the alphabet, at this 1-based position.
    Character { position: usize, found: char },
    /// The check character does not match.
    Check { expected: char, found: char },
}

impl std::fmt::Display for UsccError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsccError::Length(n) => {
                write!(f, "has {n} characters; a unified social credit code has 18")
            }
            UsccError::Character { position, found } => write!(
                f,
                "character {position} is `{found}`, which is not used in credit codes (no I, O, Z, S, V; letters are upper-case)"
            ),
            UsccError::Check { expected, found } => write!(
                f,
                "check character is `{found}` but the first 17 characters give `{expected}`: a character was mistyped; compare with the business licence"
            ),
        }
    }
}

fn value(c: char) -> Option<u32> {
    ALPHABET.find(c).map(|i| i as u32)
}

/// The check character for the first 17 characters, or `None` if one is not in the
/// alphabet. When the weighted sum is divisible by 31 the check character is `0`.
pub fn check_char(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut n = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value(c)? * w;
        n += 1;
    }
    if n != 17 || first17.chars().count() != 17 {
        return None;
    }
    let idx = (31 - sum % 31) % 31;
    ALPHABET.chars().nth(idx as usize)
}

/// Validates an 18-character code exactly as written (normalize first if needed).
pub fn validate(code: &str) -> Result<(), UsccError> {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(UsccError::Length(chars.len()));
    }
    for (i, c) in chars.iter().enumerate() {
        if value(*c).is_none() {
            return Err(UsccError::Character {
                position: i + 1,
                found: *c,
            });
        }
    }
    let first: String = chars[..17].iter().collect();
    // All 17 characters are in the alphabet (checked above), so a check char exists.
    let expected = check_char(&first).unwrap_or('?');
    if expected != chars[17] {
        return Err(UsccError::Check {
            expected,
            found: chars[17],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_codes_are_valid() {
        assert_eq!(validate("91110108551385082Q"), Ok(()));
        assert_eq!(validate("91110000600037341L"), Ok(()));
    }

    #[test]
    fn wrong_check_character_names_the_expected_one() {
        assert_eq!(
            validate("91110108551385082R"),
            Err(UsccError::Check {
                expected: 'Q',
                found: 'R'
            })
        );
    }

    #[test]
    fn sum_divisible_by_31_gives_zero() {
        // Search for a prefix whose weighted sum is divisible by 31 and check the rule.
        let mut found = false;
        for last in ALPHABET.chars() {
            let p = format!("9111010855138508{last}");
            let sum: u32 = p
                .chars()
                .zip(WEIGHTS)
                .map(|(c, w)| value(c).unwrap() * w)
                .sum();
            if sum.is_multiple_of(31) {
                assert_eq!(check_char(&p), Some('0'));
                found = true;
            }
        }
        assert!(found, "some last character makes the sum divisible by 31");
    }

    #[test]
    fn bad_characters_and_lengths() {
        assert_eq!(validate("9111010855138508"), Err(UsccError::Length(16)));
        assert!(matches!(
            validate("9111010855138508IQ"),
            Err(UsccError::Character {
                position: 17,
                found: 'I'
            })
        ));
        assert!(matches!(
            validate("91110108551385082q"),
            Err(UsccError::Character { position: 18, .. })
        ));
    }
}
