//! How merchants know a webhook is ours: every delivery carries
//!
//! ```text
//! Fintech-Signature: t=<unix seconds>,v1=<hex of HMAC-SHA256(secret, "<t>.<raw body>")>
//! ```
//!
//! The merchant's recipe: split the header on `,` into `t` and `v1`; compute the HMAC-SHA256 of
//! the timestamp, a `.`, and the raw request body exactly as received, keyed by the endpoint's
//! secret (`whsec_…`, the whole string); compare it with `v1` in constant time; refuse a `t` more
//! than 5 minutes from now (a replay). During a secret rotation the header may carry several `v1`
//! values: accept if any matches.

use ring::hmac;

/// The `Fintech-Signature` header of `body` sent at `timestamp`.
pub fn header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign().as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The merchant's check (the recipe above), for tests and for merchants' reference.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance_s: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > tolerance_s {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    signatures.iter().any(|v| {
        let bytes: Option<Vec<u8>> =
            (0..v.len()).step_by(2).map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        bytes.is_some_and(|b| hmac::verify(&key, &signed, &b).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_does_not() {
        let body = br#"{"id":"evt_1","type":"account.opened"}"#;
        let h = header("whsec_abc", 1_790_000_000, body);
        assert!(h.starts_with("t=1790000000,v1="));
        assert!(verify("whsec_abc", &h, body, 1_790_000_100, 300));
        assert!(!verify("whsec_abc", &h, body, 1_790_000_400, 300), "too old");
        assert!(!verify("whsec_other", &h, body, 1_790_000_000, 300));
        assert!(!verify("whsec_abc", &h, b"{}", 1_790_000_000, 300));
        assert!(!verify("whsec_abc", "v1=00", body, 1_790_000_000, 300));
    }
}
