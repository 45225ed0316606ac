//! Recognising card numbers where they must not be: free text, error messages. Only vault
//! holds card numbers; everything else may at most find and hide them.

/// Shortest and longest card numbers (ISO/IEC 7812).
pub const MIN_PAN_DIGITS: usize = 12;
pub const MAX_PAN_DIGITS: usize = 19;

/// What a hidden card number is replaced with.
/// Shorter than any card number, so removing one never makes a text longer (its length was
/// checked against the column it is stored in).
pub const REDACTED: &str = "[redacted]";

/// Whether `digits` (ASCII digits only) pass the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// `text` with every Luhn-valid run of 12 to 19 digits (single spaces or dashes allowed between
/// digits, as people type card numbers) replaced by [`REDACTED`]. Longer digit runs are left
/// alone unless a card number hides inside them at a boundary.
pub fn redact_card_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // Card numbers start with 1-9 (the major industry identifier 0 is not used by cards).
        if !('1'..='9').contains(&chars[i]) || (i > 0 && chars[i - 1].is_ascii_digit()) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run of digits with single separators, starting at i; the size of each group.
        let mut digits = String::new();
        let mut groups: Vec<usize> = vec![0];
        let mut ends = Vec::new(); // (digit count, index after that digit, groups so far)
        let mut j = i;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                digits.push(chars[j]);
                if let Some(last) = groups.last_mut() {
                    *last += 1;
                }
                ends.push((digits.len(), j + 1, groups.clone()));
                j += 1;
            } else if (chars[j] == ' ' || chars[j] == '-')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && j > i
            {
                groups.push(0);
                j += 1;
            } else {
                break;
            }
        }
        // The longest card number at the start of the run, not followed by a digit, written
        // whole or in the groups people use (4-4-4-4..., or 4-6-5 and 4-6-4): other groupings
        // (UUIDs, phone numbers) are not card numbers.
        let found = ends.iter().rev().find(|(n, end, groups)| {
            (MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(n)
                && (*n == digits.len() || !chars[*end].is_ascii_digit())
                && card_grouping(groups)
                && luhn_valid(&digits[..*n])
        });
        match found {
            Some((_, end, _)) => {
                out.push_str(REDACTED);
                i = *end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Whether digit groups are written as card numbers are: one group, or groups of 4 with a
/// shorter last one, or American Express's and Diners' 4-6-5 and 4-6-4.
fn card_grouping(groups: &[usize]) -> bool {
    match groups {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|g| *g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// Whether `text` holds something that looks like a card number.
pub fn contains_card_number(text: &str) -> bool {
    redact_card_numbers(text) != text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4242424242424242"));
        assert!(!luhn_valid("4242424242424241"));
        assert!(!luhn_valid("42x2"));
    }

    #[test]
    fn card_numbers_are_removed_from_text() {
        assert_eq!(redact_card_numbers("card 4242424242424242 declined"), format!("card {REDACTED} declined"));
        assert_eq!(redact_card_numbers("4242 4242 4242 4242"), REDACTED);
        assert_eq!(redact_card_numbers("4242-4242-4242-4242."), format!("{REDACTED}."));
        assert_eq!(
            redact_card_numbers("integer `378282246310005`, expected"),
            format!("integer `{REDACTED}`, expected")
        );
        // Not card numbers: too short, not Luhn-valid, phone numbers, amounts, ids.
        for keep in
            ["order 1234", "4242424242424241", "+44 20 7946 0958", "12.50 USD", "0190a5e0-0000-7000-8000-000000000000"]
        {
            assert_eq!(redact_card_numbers(keep), keep);
        }
        assert!(contains_card_number("my card is 5555 5555 5555 4444, help"));
        assert!(!contains_card_number("nothing here"));
    }
}
