//! Parsed, validated value types shared by services ("parse, don't validate").

pub mod card;

/// Longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An e-mail address, checked for shape (the mailbox itself is proven by delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > MAX_EMAIL_CHARS {
            return Err("must be 1 to 254 characters");
        }
        let (local, domain) = s.rsplit_once('@').ok_or("must contain @")?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err("is not a valid e-mail address");
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form: `+`, country code, subscriber number; 8 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts spaces, dashes, dots and parentheses as separators; stores `+` and digits only.
    pub fn parse(raw: &str) -> Result<Phone, &'static str> {
        let s = raw.trim();
        let rest = s.strip_prefix('+').ok_or("must start with + and the country code (E.164)")?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err("may contain only digits and separators"),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err("must have 8 to 15 digits after +, not starting with 0");
        }
        Ok(Phone(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with most of its digits hidden, for logs, security records and answers:
    /// `+15551234567` is `+1555*****67`. It shows the first digits (at most 4: the country code
    /// and a little more) and the last 2, and always hides at least half of the digits (rounded
    /// down). Logs and records name a number only this way.
    pub fn masked(&self) -> String {
        let digits = self.0.strip_prefix('+').unwrap_or(&self.0);
        let n = digits.len();
        // `parse` guarantees 8 to 15 ASCII digits: `head` is 2 to 4, and `n - head - 2` at least 4.
        let head = n.saturating_sub(2 + n / 2).min(4);
        let tail = n.saturating_sub(2).max(head);
        format!("+{}{}{}", &digits[..head], "*".repeat(tail - head), &digits[tail..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ana@Example.COM ").map(|e| e.0), Ok("Ana@example.com".to_owned()));
        for bad in ["", "a", "a@", "@b.c", "a@b", "a@b..c", "a b@c.d", "a@-b.c", ".a@b.c", "a@b.c\nX-Injected: 1"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(Phone::parse("+44 20 7946-0958").map(|p| p.0), Ok("+442079460958".to_owned()));
        for bad in ["", "07946 0958", "+0123456789", "+1234", "+1234567890123456", "+44 20 79x6", "++4420794609"] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_e164_bounds() {
        // 8 to 15 digits after `+`, the first not 0; separators dropped, nothing else allowed.
        assert_eq!(Phone::parse("+12345678").map(|p| p.0), Ok("+12345678".to_owned()));
        assert_eq!(Phone::parse("+123456789012345").map(|p| p.0), Ok("+123456789012345".to_owned()));
        assert_eq!(Phone::parse(" +1 (555) 123-4567 ").map(|p| p.0), Ok("+15551234567".to_owned()));
        for bad in
            ["+1234567", "+1234567890123456", "+0555123456", "15551234567", "+1555123456a", "+1555\n1234567", "+"]
        {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_masked() {
        let masked = |raw: &str| Phone::parse(raw).map(|p| p.masked());
        assert_eq!(masked("+15551234567"), Ok("+1555*****67".to_owned()));
        assert_eq!(masked("+12345678"), Ok("+12****78".to_owned()));
        assert_eq!(masked("+1234567890"), Ok("+123*****90".to_owned()));
        assert_eq!(masked("+123456789012345"), Ok("+1234*********45".to_owned()));
        for raw in ["+12345678", "+15551234567", "+123456789012345"] {
            let m = masked(raw).expect("valid");
            let hidden = m.chars().filter(|c| *c == '*').count();
            assert!(hidden >= (raw.len() - 1) / 2, "{m} hides at least half of the digits");
            assert_eq!(m.len(), raw.len(), "{m}");
        }
    }
}
