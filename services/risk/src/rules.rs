//! The rules: a JSON document, validated, versioned in the database and changed by admins
//! without a rebuild, and the pure evaluation of one attempt against them.
//!
//! Every rule that fires adds its `score` and a reason; the total (capped at 100) against
//! `review_at` and `decline_at` gives the decision. A blocked BIN or country always declines.

use fintech_http::FieldError;
use serde::{Deserialize, Serialize};

/// The rule set. Unknown fields are refused: a misspelt rule must not be silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Total score from which an attempt goes to review (1 to 100).
    pub review_at: u32,
    /// Total score from which an attempt is declined (1 to 100, at least `review_at`).
    pub decline_at: u32,
    #[serde(default)]
    pub amount_limits: Vec<AmountLimit>,
    #[serde(default)]
    pub velocity: Vec<Velocity>,
    /// BIN prefixes (1 to 6 digits: vault shares a card's first 6) whose cards are declined.
    #[serde(default)]
    pub blocked_bins: Vec<String>,
    /// Issuing countries (ISO 3166-1 alpha-2) whose cards are declined.
    #[serde(default)]
    pub blocked_countries: Vec<String>,
    /// Which country issued a card, by BIN prefix (the longest prefix wins). This table stands in
    /// for the acquirer's BIN database; a card whose BIN is not listed has no known country.
    #[serde(default)]
    pub bin_countries: Vec<BinCountry>,
}

/// An amount above `above_minor` (in `currency`) adds `score`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountLimit {
    pub currency: String,
    pub above_minor: i64,
    pub score: u32,
}

/// At least `max_attempts` earlier attempts (1 or more) by the same `key` within
/// `window_seconds` add `score`. Attempts count whatever their decision: card testing is mostly
/// declines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Velocity {
    pub key: VelocityKey,
    pub window_seconds: u64,
    pub max_attempts: u32,
    pub score: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VelocityKey {
    /// The card (its fingerprint: the same card under any customer).
    Card,
    Customer,
    /// The client address the attempt came from.
    Ip,
}

impl VelocityKey {
    pub fn as_str(self) -> &'static str {
        match self {
            VelocityKey::Card => "card",
            VelocityKey::Customer => "customer",
            VelocityKey::Ip => "ip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BinCountry {
    pub prefix: String,
    pub country: String,
}

/// The longest window a velocity rule may use: 30 days.
pub const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;
const MAX_ENTRIES: usize = 10_000;

impl Default for Rules {
    /// What a new installation starts with: conservative limits an operator tunes.
    fn default() -> Self {
        let amount = |currency: &str, review: i64, decline: i64| {
            [
                AmountLimit { currency: currency.into(), above_minor: review, score: 50 },
                AmountLimit { currency: currency.into(), above_minor: decline, score: 50 },
            ]
        };
        Rules {
            review_at: 50,
            decline_at: 100,
            amount_limits: [amount("USD", 500_000, 2_500_000), amount("EUR", 500_000, 2_500_000)].concat(),
            velocity: vec![
                Velocity { key: VelocityKey::Card, window_seconds: 600, max_attempts: 5, score: 60 },
                Velocity { key: VelocityKey::Card, window_seconds: 86_400, max_attempts: 20, score: 100 },
                Velocity { key: VelocityKey::Customer, window_seconds: 3600, max_attempts: 20, score: 50 },
                Velocity { key: VelocityKey::Ip, window_seconds: 600, max_attempts: 30, score: 60 },
            ],
            blocked_bins: Vec::new(),
            blocked_countries: Vec::new(),
            bin_countries: Vec::new(),
        }
    }
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn country_ok(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

impl Rules {
    /// Every problem of the document at once, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: String, code: &str, message: &str| errors.push(FieldError::new(&field, code, message));
        if !(1..=100).contains(&self.review_at) {
            bad("review_at".into(), "out_of_range", "must be 1 to 100");
        }
        if !(1..=100).contains(&self.decline_at) || self.decline_at < self.review_at {
            bad("decline_at".into(), "out_of_range", "must be 1 to 100 and at least review_at");
        }
        let lists = [
            self.amount_limits.len(),
            self.velocity.len(),
            self.blocked_bins.len(),
            self.blocked_countries.len(),
            self.bin_countries.len(),
        ];
        if lists.iter().any(|n| *n > MAX_ENTRIES) {
            bad("rules".into(), "too_many_entries", "each list holds at most 10000 entries");
        }
        for (i, a) in self.amount_limits.iter().enumerate() {
            if a.currency.parse::<fintech_money::Currency>().is_err() {
                bad(format!("amount_limits[{i}].currency"), "unknown_currency", "must be an ISO 4217 code such as USD");
            }
            if a.above_minor < 0 {
                bad(format!("amount_limits[{i}].above_minor"), "invalid_amount", "must be 0 or more minor units");
            }
            if a.score > 100 {
                bad(format!("amount_limits[{i}].score"), "out_of_range", "must be 0 to 100");
            }
        }
        for (i, v) in self.velocity.iter().enumerate() {
            if !(1..=MAX_WINDOW_SECONDS).contains(&v.window_seconds) {
                bad(format!("velocity[{i}].window_seconds"), "out_of_range", "must be 1 to 2592000 (30 days)");
            }
            if v.score > 100 {
                bad(format!("velocity[{i}].score"), "out_of_range", "must be 0 to 100");
            }
            if v.max_attempts == 0 {
                bad(format!("velocity[{i}].max_attempts"), "out_of_range", "must be at least 1");
            }
        }
        for (i, b) in self.blocked_bins.iter().enumerate() {
            if !digits(b, 1, 6) {
                bad(format!("blocked_bins[{i}]"), "invalid_bin", "must be 1 to 6 digits");
            }
        }
        for (i, c) in self.blocked_countries.iter().enumerate() {
            if !country_ok(c) {
                bad(
                    format!("blocked_countries[{i}]"),
                    "invalid_country",
                    "must be an ISO 3166-1 alpha-2 code such as US",
                );
            }
        }
        for (i, b) in self.bin_countries.iter().enumerate() {
            if !digits(&b.prefix, 1, 6) {
                bad(format!("bin_countries[{i}].prefix"), "invalid_bin", "must be 1 to 6 digits");
            }
            if !country_ok(&b.country) {
                bad(
                    format!("bin_countries[{i}].country"),
                    "invalid_country",
                    "must be an ISO 3166-1 alpha-2 code such as US",
                );
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The issuing country of a card with this BIN, by the longest listed prefix.
    pub fn country_of(&self, bin: &str) -> Option<&str> {
        self.bin_countries
            .iter()
            .filter(|b| bin.starts_with(b.prefix.as_str()))
            .max_by_key(|b| b.prefix.len())
            .map(|b| b.country.as_str())
    }
}

/// What the rules look at: the attempt, and how many earlier attempts each velocity rule saw.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub amount_minor: i64,
    pub currency: &'a str,
    pub bin: Option<&'a str>,
    /// Earlier attempts per velocity rule, in the order of `Rules::velocity`.
    pub prior_attempts: &'a [u64],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Review,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Decline => "decline",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" => Some(Decision::Approve),
            "review" => Some(Decision::Review),
            "decline" => Some(Decision::Decline),
            _ => None,
        }
    }
}

/// Why a rule fired: a stable code and words for staff. Customers are never shown these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: String,
    pub message: String,
    pub score: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub score: u32,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub country: Option<String>,
}

/// Scores one attempt. Pure: the caller counted the earlier attempts.
pub fn evaluate(rules: &Rules, attempt: &Attempt<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let mut blocked = false;
    for limit in rules.amount_limits.iter().filter(|l| l.currency == attempt.currency) {
        if attempt.amount_minor > limit.above_minor {
            reasons.push(Reason {
                code: "amount_limit".into(),
                message: format!("amount above {} minor units of {}", limit.above_minor, limit.currency),
                score: limit.score,
            });
        }
    }
    for (rule, seen) in rules.velocity.iter().zip(attempt.prior_attempts) {
        if *seen >= u64::from(rule.max_attempts) {
            reasons.push(Reason {
                code: format!("velocity_{}", rule.key.as_str()),
                message: format!(
                    "{seen} earlier attempts by this {} within {} s (limit {})",
                    rule.key.as_str(),
                    rule.window_seconds,
                    rule.max_attempts
                ),
                score: rule.score,
            });
        }
    }
    let country = attempt.bin.and_then(|b| rules.country_of(b)).map(str::to_owned);
    if let Some(bin) = attempt.bin
        && let Some(prefix) = rules.blocked_bins.iter().find(|p| bin.starts_with(p.as_str()))
    {
        blocked = true;
        reasons.push(Reason {
            code: "blocked_bin".into(),
            message: format!("BIN prefix {prefix} is blocked"),
            score: 100,
        });
    }
    if let Some(c) = &country
        && rules.blocked_countries.contains(c)
    {
        blocked = true;
        reasons.push(Reason {
            code: "blocked_country".into(),
            message: format!("cards issued in {c} are blocked"),
            score: 100,
        });
    }
    let score = reasons.iter().map(|r| r.score).sum::<u32>().min(100);
    let decision = if blocked || score >= rules.decline_at {
        Decision::Decline
    } else if score >= rules.review_at {
        Decision::Review
    } else {
        Decision::Approve
    };
    Verdict { score, decision, reasons, country }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attempt<'a>(amount: i64, bin: Option<&'a str>, prior: &'a [u64]) -> Attempt<'a> {
        Attempt { amount_minor: amount, currency: "USD", bin, prior_attempts: prior }
    }

    #[test]
    fn defaults_are_valid_and_approve_an_ordinary_payment() {
        let rules = Rules::default();
        rules.validate().unwrap();
        let v = evaluate(&rules, &attempt(1_000, Some("424242"), &[0, 0, 0, 0]));
        assert_eq!((v.decision, v.score), (Decision::Approve, 0));
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn amounts_go_to_review_then_decline() {
        let rules = Rules::default();
        let v = evaluate(&rules, &attempt(500_001, None, &[0, 0, 0, 0]));
        assert_eq!((v.decision, v.score), (Decision::Review, 50));
        assert_eq!(v.reasons[0].code, "amount_limit");
        let v = evaluate(&rules, &attempt(2_500_001, None, &[0, 0, 0, 0]));
        assert_eq!((v.decision, v.score), (Decision::Decline, 100));
        // Exactly at the limit is not above it.
        assert_eq!(evaluate(&rules, &attempt(500_000, None, &[0, 0, 0, 0])).decision, Decision::Approve);
    }

    #[test]
    fn velocity_fires_at_max_attempts_and_scores_add_up() {
        let rules = Rules::default();
        let v = evaluate(&rules, &attempt(1_000, None, &[4, 0, 0, 0]));
        assert_eq!(v.decision, Decision::Approve);
        let v = evaluate(&rules, &attempt(1_000, None, &[5, 0, 0, 0]));
        assert_eq!((v.decision, v.score), (Decision::Review, 60));
        assert_eq!(v.reasons[0].code, "velocity_card");
        // Card and address together: 60 + 60, capped at 100.
        let v = evaluate(&rules, &attempt(1_000, None, &[5, 0, 0, 30]));
        assert_eq!((v.decision, v.score), (Decision::Decline, 100));
        assert_eq!(v.reasons.len(), 2);
    }

    #[test]
    fn blocked_bins_and_countries_always_decline() {
        let rules = Rules {
            review_at: 90,
            decline_at: 100,
            blocked_bins: vec!["4000".into()],
            blocked_countries: vec!["KP".into()],
            bin_countries: vec![
                BinCountry { prefix: "5".into(), country: "US".into() },
                BinCountry { prefix: "5555".into(), country: "KP".into() },
            ],
            ..Rules::default()
        };
        rules.validate().unwrap();
        let v = evaluate(&rules, &attempt(1, Some("400000"), &[]));
        assert_eq!(v.decision, Decision::Decline);
        assert_eq!(v.reasons[0].code, "blocked_bin");
        // The longest prefix wins: 5555… is KP, 5105… is US.
        let v = evaluate(&rules, &attempt(1, Some("555555"), &[]));
        assert_eq!((v.decision, v.country.as_deref()), (Decision::Decline, Some("KP")));
        let v = evaluate(&rules, &attempt(1, Some("510510"), &[]));
        assert_eq!((v.decision, v.country.as_deref()), (Decision::Approve, Some("US")));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let rules = Rules {
            review_at: 0,
            decline_at: 101,
            amount_limits: vec![AmountLimit { currency: "XYZ".into(), above_minor: -1, score: 101 }],
            velocity: vec![Velocity { key: VelocityKey::Ip, window_seconds: 0, max_attempts: 1, score: 1 }],
            blocked_bins: vec!["42a".into()],
            blocked_countries: vec!["usa".into()],
            bin_countries: vec![BinCountry { prefix: "".into(), country: "U".into() }],
        };
        let fields: Vec<String> = rules.validate().unwrap_err().into_iter().map(|e| e.field).collect();
        for f in [
            "review_at",
            "decline_at",
            "amount_limits[0].currency",
            "amount_limits[0].above_minor",
            "amount_limits[0].score",
            "velocity[0].window_seconds",
            "blocked_bins[0]",
            "blocked_countries[0]",
            "bin_countries[0].prefix",
            "bin_countries[0].country",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }
}
