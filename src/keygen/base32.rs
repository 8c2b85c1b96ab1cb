//! Crockford's base32: digits and uppercase letters without I, L, O and U, so a code read aloud
//! or typed by hand survives. Decoding forgives case, dashes, spaces and the look-alikes
//! (`O` → `0`, `I`/`L` → `1`).

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Encodes bytes, most significant bit first; the last character is zero-padded.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes what [`encode`] made; None when a character is foreign or the padding bits are not
/// zero (so each byte string has exactly one spelling).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let value = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => 0,
            'I' | 'L' => 1,
            c => ALPHABET.iter().position(|&a| a as char == c)? as u32,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (buffer == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), (bytes.len() * 8).div_ceil(5));
            assert_eq!(decode(&text).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn decoding_forgives_what_people_type() {
        let text = encode(b"nexkey!");
        let typed = text.to_lowercase().replace('0', "o").replace('1', "l");
        assert_eq!(
            decode(&format!("{}-{}", &typed[..4], &typed[4..])).unwrap(),
            b"nexkey!"
        );
        assert_eq!(decode("U"), None);
    }

    #[test]
    fn non_zero_padding_is_refused() {
        // One byte is 8 bits: two characters carry 10, the last 2 must be zero.
        assert_eq!(decode("Z0"), Some(vec![0xF8]));
        assert_eq!(decode("Z1"), None);
    }
}
