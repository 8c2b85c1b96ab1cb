//! Random codes from the operating system's CSPRNG, in groups: `K7QXM-2HJ9P-…`.

use rand::Rng;
use serde::Deserialize;

use super::{Key, KeyGenError, KeyGenerator, KeyRequest};

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
}

impl Default for RandomSettings {
    fn default() -> Self {
        RandomSettings {
            alphabet: UNAMBIGUOUS.into(),
            groups: 4,
            group_length: 5,
            prefix: String::new(),
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
            return Err("groups × group_length must be between 1 and 64".into());
        }
        if self
            .prefix
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err("prefix may hold only ASCII letters, digits and '-'".into());
        }
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
    fn name(&self) -> &'static str {
        "random"
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
        Ok(Key { code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> KeyRequest<'static> {
        KeyRequest {
            product: "P",
            customer: "a@b.c",
            fulfillment: "F",
            index: 0,
            attempt: 0,
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
}
