//! Random codes from the operating system's CSPRNG, in groups: `K7QXM-2HJ9P-…`.

use rand::Rng;
use serde::Deserialize;

use super::{Key, KeyGenError, KeyGenerator, KeyRequest, Verdict, validate_prefix};

/// Crockford-like alphabet without the characters people confuse (0/O, 1/I/L).
pub const UNAMBIGUOUS: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomSettings {
    /// Characters a code is drawn from.
    pub alphabet: String,
    /// Number of groups, joined by `-`.
    pub groups: u32,
    pub group_length: u32,
    /// Put before the first group, followed by `-` (e.g. `ACME`).
    pub prefix: String,
    /// Append a check character (Luhn mod N over the alphabet) to the last group, so a typo
    /// is caught before any lookup.
    pub check: bool,
}

impl Default for RandomSettings {
    fn default() -> Self {
        RandomSettings {
            alphabet: UNAMBIGUOUS.into(),
            groups: 4,
            group_length: 5,
            prefix: String::new(),
            check: false,
        }
    }
}

impl RandomSettings {
    pub fn validate(&self) -> Result<(), String> {
        let chars: Vec<char> = self.alphabet.chars().collect();
        if chars.len() < 2 || chars.iter().any(|c| !c.is_ascii_alphanumeric()) {
            return Err("alphabet needs two or more ASCII letters or digits".into());
        }
        let mut sorted = chars.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != chars.len() {
            return Err("alphabet repeats a character".into());
        }
        if self.groups == 0 || self.group_length == 0 || self.groups * self.group_length > 64 {
            // (the check character, when on, comes on top)
            return Err("groups × group_length must be between 1 and 64".into());
        }
        validate_prefix(&self.prefix)?;
        Ok(())
    }
}

pub struct RandomGenerator {
    alphabet: Vec<char>,
    settings: RandomSettings,
}

impl RandomGenerator {
    pub fn new(settings: RandomSettings) -> Self {
        RandomGenerator {
            alphabet: settings.alphabet.chars().collect(),
            settings,
        }
    }
}

impl KeyGenerator for RandomGenerator {
    fn name(&self) -> &str {
        "random"
    }

    fn kind(&self) -> super::GeneratorKind {
        super::GeneratorKind::Random
    }

    fn generate(&self, _request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        // ThreadRng is a ChaCha CSPRNG seeded from the operating system.
        let mut rng = rand::rng();
        let mut code = String::new();
        if !self.settings.prefix.is_empty() {
            code.push_str(&self.settings.prefix);
            code.push('-');
        }
        for group in 0..self.settings.groups {
            if group > 0 {
                code.push('-');
            }
            for _ in 0..self.settings.group_length {
                code.push(self.alphabet[rng.random_range(0..self.alphabet.len())]);
            }
        }
        if self.settings.check {
            let body = &code[self.body_start()..];
            let check = luhn_check(&self.alphabet, body).ok_or_else(|| {
                KeyGenError::Failed("code holds a character outside the alphabet".into())
            })?;
            code.push(check);
        }
        Ok(Key::code(code))
    }

    fn verify(&self, _product: &str, code: &str) -> Verdict {
        if !self.settings.check {
            return Verdict::Unsupported;
        }
        let code = code.trim();
        let body = match self.settings.prefix.as_str() {
            "" => Some(code),
            prefix => code
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-')),
        };
        let Some(body) = body else {
            return Verdict::Forged("wrong prefix".into());
        };
        let chars: Vec<char> = body.chars().filter(|&c| c != '-').collect();
        if chars.len() != (self.settings.groups * self.settings.group_length) as usize + 1 {
            return Verdict::Forged("wrong length".into());
        }
        let payload: String = chars[..chars.len() - 1].iter().collect();
        match luhn_check(&self.alphabet, &payload) {
            Some(expected) if expected == chars[chars.len() - 1] => Verdict::Genuine(
                "check character matches (catches typos; not a proof of origin)".into(),
            ),
            Some(_) => Verdict::Forged("check character does not match".into()),
            None => Verdict::Forged("character outside the alphabet".into()),
        }
    }
}

impl RandomGenerator {
    /// Where the random part starts, after the prefix and its dash.
    fn body_start(&self) -> usize {
        if self.settings.prefix.is_empty() {
            0
        } else {
            self.settings.prefix.len() + 1
        }
    }
}

/// The Luhn mod N check character of `body` (dashes ignored): it makes any single wrong
/// character, and most swaps of neighbours, fail the check. None when a character is foreign.
pub fn luhn_check(alphabet: &[char], body: &str) -> Option<char> {
    let n = alphabet.len();
    let mut factor = 2;
    let mut sum = 0;
    for c in body.chars().rev().filter(|&c| c != '-') {
        let addend = factor * alphabet.iter().position(|&a| a == c)?;
        // Doubling must permute the alphabet: Luhn's digit sum does for an even N, plain
        // doubling modulo N does for an odd one (the default alphabet has 31 characters).
        sum += if n.is_multiple_of(2) {
            addend / n + addend % n
        } else {
            addend % n
        };
        factor = if factor == 2 { 1 } else { 2 };
    }
    Some(alphabet[(n - sum % n) % n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> KeyRequest<'static> {
        KeyRequest {
            product: "P",
            customer: "a@b.c",
            fulfillment: "F",
            call: "new:F:",
            index: 0,
            attempt: 0,
            end_date: None,
        }
    }

    #[test]
    fn default_codes_are_four_groups_of_five_unambiguous_characters() {
        let generator = RandomGenerator::new(RandomSettings::default());
        let code = generator.generate(&request()).unwrap().code;
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4, "{code}");
        for group in groups {
            assert_eq!(group.len(), 5, "{code}");
            assert!(group.chars().all(|c| UNAMBIGUOUS.contains(c)), "{code}");
        }
    }

    #[test]
    fn prefix_and_layout_follow_the_settings() {
        let settings = RandomSettings {
            alphabet: "AB".into(),
            groups: 2,
            group_length: 3,
            prefix: "ACME".into(),
            check: false,
        };
        let code = RandomGenerator::new(settings)
            .generate(&request())
            .unwrap()
            .code;
        assert_eq!(code.len(), "ACME-XXX-XXX".len(), "{code}");
        assert!(code.starts_with("ACME-"), "{code}");
        assert!(code[5..].chars().all(|c| "AB-".contains(c)), "{code}");
    }

    #[test]
    fn codes_do_not_repeat() {
        let generator = RandomGenerator::new(RandomSettings::default());
        let codes: std::collections::HashSet<String> = (0..10_000)
            .map(|_| generator.generate(&request()).unwrap().code)
            .collect();
        assert_eq!(codes.len(), 10_000);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let mut settings = RandomSettings {
            alphabet: "AA".into(),
            ..Default::default()
        };
        assert!(settings.validate().is_err());
        settings = RandomSettings {
            groups: 0,
            ..Default::default()
        };
        assert!(settings.validate().is_err());
        settings = RandomSettings {
            prefix: "A B".into(),
            ..Default::default()
        };
        assert!(settings.validate().is_err());
        assert!(RandomSettings::default().validate().is_ok());
    }

    #[test]
    fn check_character_catches_every_single_typo() {
        let generator = RandomGenerator::new(RandomSettings {
            prefix: "ACME".into(),
            check: true,
            ..Default::default()
        });
        for _ in 0..50 {
            let code = generator.generate(&request()).unwrap().code;
            assert_eq!(code.len(), "ACME-".len() + 4 * 5 + 3 + 1, "{code}");
            assert!(
                matches!(generator.verify("P", &code), Verdict::Genuine(_)),
                "{code}"
            );
            // Change each character of the random part to every other letter of the alphabet.
            for (position, original) in code.char_indices().skip(5) {
                if original == '-' {
                    continue;
                }
                for replacement in UNAMBIGUOUS.chars().filter(|&c| c != original) {
                    let mut typo = code.clone();
                    typo.replace_range(position..position + 1, &replacement.to_string());
                    assert!(
                        matches!(generator.verify("P", &typo), Verdict::Forged(_)),
                        "{typo} passed"
                    );
                }
            }
        }
        assert!(matches!(
            generator.verify("P", "ACME-2345"),
            Verdict::Forged(_)
        ));
        assert!(matches!(
            generator.verify("P", "OTHER-22222-22222-22222-22222"),
            Verdict::Forged(_)
        ));
        let unchecked = RandomGenerator::new(RandomSettings::default());
        assert_eq!(unchecked.verify("P", "ANY"), Verdict::Unsupported);
    }
}
