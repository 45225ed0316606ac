//! The acquirer: the third party that asks the card network to authorize a charge. Behind the
//! [`Acquirer`] trait: [`Simulator`], deterministic, for local runs and tests, and
//! [`HttpAcquirer`], the shape of a real acquirer's HTTP API. Only vault calls it: it is the one
//! place where a card number and CVV leave vault, in flight, to the acquirer.
//!
//! Every authorization carries the caller's charge id; an acquirer answers a repeated id with
//! its first answer and never charges twice (the simulator does, and real acquirers take an
//! idempotency key).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fintech_config::Secret;
use serde::{Deserialize, Serialize};

use crate::domain::{Cvv, Expiry, Pan};

/// One authorization request.
#[derive(Debug)]
pub struct Authorization<'a> {
    /// The caller's charge id: the idempotency key at the acquirer.
    pub charge_id: &'a str,
    pub pan: &'a Pan,
    pub expiry: Expiry,
    pub cvv: Option<&'a Cvv>,
    pub amount_minor: i64,
    pub currency: &'a str,
}

/// The acquirer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Approved { authorization_code: String },
    Declined { decline_code: String },
}

/// No answer: the outcome is unknown. Retrying with the same charge id is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquirerError {
    #[error("the acquirer did not answer in time")]
    Timeout,
    #[error("the acquirer is unavailable")]
    Unavailable,
}

#[async_trait]
pub trait Acquirer: Send + Sync + fmt::Debug {
    async fn authorize(&self, auth: Authorization<'_>) -> Result<Outcome, AcquirerError>;
}

/// The simulator's test cards (documented in the vault README). Any other valid number is
/// approved.
pub mod test_cards {
    pub const APPROVED: &str = "4242424242424242";
    pub const DECLINED: &str = "4000000000000002";
    pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
    pub const EXPIRED: &str = "4000000000000069";
    /// Authorized, but the first answer for each charge id is lost (a network timeout); the
    /// retry with the same charge id gets the approval, and the card is charged once.
    pub const TIMEOUT: &str = "4000000000000119";
}

/// A deterministic acquirer: the outcome depends on the card number only.
#[derive(Debug, Default)]
pub struct Simulator {
    /// Outcome per charge id (what a real acquirer remembers by idempotency key).
    seen: Mutex<HashMap<String, Outcome>>,
}

impl Simulator {
    /// How many distinct charges were approved: what cardholders were charged.
    pub fn approved_charges(&self) -> usize {
        self.seen.lock().map(|s| s.values().filter(|o| matches!(o, Outcome::Approved { .. })).count()).unwrap_or(0)
    }
}

#[async_trait]
impl Acquirer for Simulator {
    async fn authorize(&self, auth: Authorization<'_>) -> Result<Outcome, AcquirerError> {
        let mut seen = self.seen.lock().map_err(|_| AcquirerError::Unavailable)?;
        if let Some(first) = seen.get(auth.charge_id) {
            return Ok(first.clone());
        }
        let declined = |code: &str| Outcome::Declined { decline_code: code.to_owned() };
        let code = format!("SIM{}", &auth.charge_id.chars().rev().take(6).collect::<String>());
        let outcome = match auth.pan.expose() {
            test_cards::DECLINED => declined("card_declined"),
            test_cards::INSUFFICIENT_FUNDS => declined("insufficient_funds"),
            test_cards::EXPIRED => declined("expired_card"),
            _ => Outcome::Approved { authorization_code: code },
        };
        seen.insert(auth.charge_id.to_owned(), outcome.clone());
        if auth.pan.expose() == test_cards::TIMEOUT {
            // Processed, but the answer never arrives.
            return Err(AcquirerError::Timeout);
        }
        Ok(outcome)
    }
}

/// Each call to a real acquirer gives up after this long; the outcome is then unknown and the
/// caller retries with the same charge id.
pub const ACQUIRER_TIMEOUT: Duration = Duration::from_secs(15);

/// A real acquirer over HTTPS: `POST <base>/v1/authorizations` with the card, the amount and an
/// `Idempotency-Key` (the charge id), API key in `Authorization: Bearer`. The request body holds
/// the full card number: it goes only to the acquirer, over TLS, and is never logged.
pub struct HttpAcquirer {
    base: String,
    api_key: Secret<String>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpAcquirer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAcquirer").field("base", &self.base).finish_non_exhaustive()
    }
}

impl HttpAcquirer {
    pub fn new(base: &str, api_key: Secret<String>) -> Result<HttpAcquirer, reqwest::Error> {
        let http = fintech_http::http_client().timeout(ACQUIRER_TIMEOUT).build()?;
        Ok(HttpAcquirer { base: base.trim_end_matches('/').to_owned(), api_key, http })
    }
}

#[derive(Deserialize)]
struct AcquirerAnswer {
    approved: bool,
    #[serde(default)]
    authorization_code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

#[async_trait]
impl Acquirer for HttpAcquirer {
    async fn authorize(&self, auth: Authorization<'_>) -> Result<Outcome, AcquirerError> {
        let body = zeroize::Zeroizing::new(
            serde_json::json!({
                "card": { "number": auth.pan.expose(), "exp_month": auth.expiry.month, "exp_year": auth.expiry.year,
                          "cvc": auth.cvv.map(Cvv::expose) },
                "amount": auth.amount_minor,
                "currency": auth.currency,
            })
            .to_string(),
        );
        let response = self
            .http
            .post(format!("{}/v1/authorizations", self.base))
            .bearer_auth(self.api_key.expose())
            .header("Idempotency-Key", auth.charge_id)
            .header("Content-Type", "application/json")
            .body(body.as_str().to_owned())
            .send()
            .await
            .map_err(|e| if e.is_timeout() { AcquirerError::Timeout } else { AcquirerError::Unavailable })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(AcquirerError::Unavailable);
        }
        if !status.is_success() {
            tracing::error!(status = status.as_u16(), "the acquirer refused an authorization request");
            return Err(AcquirerError::Unavailable);
        }
        let answer: AcquirerAnswer = response.json().await.map_err(|_| AcquirerError::Unavailable)?;
        Ok(if answer.approved {
            Outcome::Approved { authorization_code: answer.authorization_code.unwrap_or_default() }
        } else {
            Outcome::Declined { decline_code: answer.decline_code.unwrap_or_else(|| "card_declined".into()) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth<'a>(id: &'a str, pan: &'a Pan) -> Authorization<'a> {
        Authorization {
            charge_id: id,
            pan,
            expiry: Expiry { month: 12, year: 2099 },
            cvv: None,
            amount_minor: 100,
            currency: "USD",
        }
    }

    #[tokio::test]
    async fn simulator_cards_and_safe_retries() {
        let sim = Simulator::default();
        let card = |n: &str| Pan::parse(n).expect("test card");
        let approved = card(test_cards::APPROVED);
        assert!(matches!(sim.authorize(auth("c1", &approved)).await, Ok(Outcome::Approved { .. })));
        for (n, code) in [
            (test_cards::DECLINED, "card_declined"),
            (test_cards::INSUFFICIENT_FUNDS, "insufficient_funds"),
            (test_cards::EXPIRED, "expired_card"),
        ] {
            let pan = card(n);
            assert_eq!(sim.authorize(auth(n, &pan)).await, Ok(Outcome::Declined { decline_code: code.into() }));
        }
        let slow = card(test_cards::TIMEOUT);
        assert_eq!(sim.authorize(auth("c2", &slow)).await, Err(AcquirerError::Timeout));
        assert!(matches!(sim.authorize(auth("c2", &slow)).await, Ok(Outcome::Approved { .. })), "the retry");
        assert!(matches!(sim.authorize(auth("c1", &approved)).await, Ok(Outcome::Approved { .. })));
        assert_eq!(sim.approved_charges(), 2, "c1 and c2, each once");
    }

    #[tokio::test]
    async fn http_acquirer_shape() {
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/authorizations"))
            .and(header("idempotency-key", "ch_1"))
            .and(header("authorization", "Bearer acq-key"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"approved": true, "authorization_code": "A1"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header("idempotency-key", "ch_2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"approved": false, "decline_code": "do_not_honor"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header("idempotency-key", "ch_3"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let acquirer = HttpAcquirer::new(&server.uri(), Secret::new("acq-key".into())).expect("client");
        let pan = Pan::parse(test_cards::APPROVED).expect("pan");
        assert_eq!(
            acquirer.authorize(auth("ch_1", &pan)).await,
            Ok(Outcome::Approved { authorization_code: "A1".into() })
        );
        assert_eq!(
            acquirer.authorize(auth("ch_2", &pan)).await,
            Ok(Outcome::Declined { decline_code: "do_not_honor".into() })
        );
        assert_eq!(acquirer.authorize(auth("ch_3", &pan)).await, Err(AcquirerError::Unavailable));
        let sent = server.received_requests().await.expect("recorded");
        assert_eq!(sent[0].body_json::<serde_json::Value>().expect("json")["card"]["number"], test_cards::APPROVED);
    }
}
