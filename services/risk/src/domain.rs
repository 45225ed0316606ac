//! Assessments: count the earlier attempts each velocity rule looks at, evaluate the rules in
//! force, and record the verdict with the attempt (the record is what later velocity counts
//! see). The same assessment id asked again answers the recorded verdict: a payment retried
//! after a timeout is neither counted twice nor judged by rules changed in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fintech_db::Db;
use fintech_db::sqlx::{self, Row, any::AnyRow};
use fintech_events::EventEnvelope;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, RwLock};

use fintech_kit::cache::SharedCache;

use crate::error::RiskError;
use crate::rules::{self, Decision, Reason, Rules, VelocityKey};
use crate::{SERVICE, TOPIC};

/// One attempt to judge. The card is known by its vault fingerprint and BIN only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentRequest {
    /// The caller's id for the attempt (a payment id): 1 to 64 letters, digits, `_ : -`.
    pub id: String,
    pub customer_id: String,
    #[serde(default)]
    pub card_fingerprint: Option<String>,
    /// The card's first 6 to 8 digits.
    #[serde(default)]
    pub bin: Option<String>,
    /// The client's address.
    #[serde(default)]
    pub ip: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
}

/// A verdict. `reasons` are for staff and for the calling service's records, never for the
/// customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub id: String,
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub score: u32,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    /// The card's issuing country, when the rules' BIN table knows it.
    pub country: Option<String>,
    pub rules_version: i64,
    pub created_at: String,
}

/// The rule set in force and its version (0: the built-in defaults, never stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSet {
    pub version: i64,
    pub rules: Rules,
}

#[derive(Debug)]
struct Cached {
    version: i64,
    rules: Arc<Rules>,
    loaded: Instant,
}

/// The risk engine of one service instance.
#[derive(Debug, Clone)]
pub struct Risk {
    db: Db,
    waker: Arc<Notify>,
    cache: Arc<RwLock<Option<Cached>>>,
    /// How long a replica keeps its copy of the rules before it reads the version in force.
    reload: Duration,
    /// The rules in force, shared by the replicas through Redis (nothing without Redis).
    shared: Arc<SharedCache>,
}

/// The shared cache's key of the rule set in force.
const RULES_KEY: &str = "rules";

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b))
}

impl AssessmentRequest {
    pub fn validate(&self) -> Result<(), RiskError> {
        let mut errors = Vec::new();
        let mut bad =
            |field: &str, code: &str, message: &str| errors.push(fintech_http::FieldError::new(field, code, message));
        if !valid_id(&self.id) {
            bad("id", "invalid_id", "1 to 64 letters, digits, _ : -");
        }
        if !valid_id(&self.customer_id) {
            bad("customer_id", "invalid_id", "1 to 64 letters, digits, _ : -");
        }
        if self.card_fingerprint.as_deref().is_some_and(|f| f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            bad("card_fingerprint", "invalid_fingerprint", "64 hexadecimal digits (vault's fingerprint)");
        }
        if self.bin.as_deref().is_some_and(|b| !(6..=8).contains(&b.len()) || !b.bytes().all(|c| c.is_ascii_digit())) {
            bad("bin", "invalid_bin", "6 to 8 digits");
        }
        if self.ip.as_deref().is_some_and(|ip| ip.is_empty() || ip.len() > 64) {
            bad("ip", "invalid_ip", "1 to 64 characters");
        }
        if self.amount_minor <= 0 {
            bad("amount_minor", "invalid_amount", "must be a positive integer of minor units");
        }
        if self.currency.parse::<fintech_money::Currency>().is_err() {
            bad("currency", "unknown_currency", "must be an ISO 4217 code such as USD");
        }
        if errors.is_empty() { Ok(()) } else { Err(RiskError::Validation(errors)) }
    }
}

const COLUMNS: &str = "id, customer_id, card_fingerprint, amount_minor, currency, score, decision, reasons, country, rules_version, created_at";

fn from_row(row: &AnyRow) -> Result<(Assessment, Option<String>), RiskError> {
    let decision: String = row.try_get("decision")?;
    let reasons: String = row.try_get("reasons")?;
    let assessment = Assessment {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        score: u32::try_from(row.try_get::<i64, _>("score")?).unwrap_or(100),
        decision: Decision::parse(&decision).ok_or(RiskError::Corrupt("decision"))?,
        reasons: serde_json::from_str(&reasons).map_err(|_| RiskError::Corrupt("reasons"))?,
        country: row.try_get("country")?,
        rules_version: row.try_get("rules_version")?,
        created_at: row.try_get("created_at")?,
    };
    Ok((assessment, row.try_get("card_fingerprint")?))
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl Risk {
    pub fn new(db: Db, waker: Arc<Notify>, reload: Duration, shared: Arc<SharedCache>) -> Risk {
        Risk { db, waker, cache: Arc::new(RwLock::new(None)), reload, shared }
    }

    /// The rules in force: this replica's copy while younger than the reload interval; then the
    /// copy the replicas share in Redis; then the database (and the copy is offered to Redis,
    /// which keeps it unless a newer version is there already).
    pub async fn rules(&self) -> Result<RuleSet, RiskError> {
        if let Some(c) = self.cache.read().await.as_ref()
            && c.loaded.elapsed() < self.reload
        {
            return Ok(RuleSet { version: c.version, rules: c.rules.as_ref().clone() });
        }
        if let Some(shared) = self.shared.get::<Rules>(RULES_KEY).await
            && shared.value.validate().is_ok()
        {
            let set = RuleSet { version: shared.version, rules: shared.value };
            self.keep(&set).await;
            return Ok(set);
        }
        let set = self.rules_from_database().await?;
        self.shared.offer(RULES_KEY, set.version, &set.rules).await;
        self.keep(&set).await;
        Ok(set)
    }

    /// Makes `set` this replica's copy, fresh from now.
    async fn keep(&self, set: &RuleSet) {
        *self.cache.write().await =
            Some(Cached { version: set.version, rules: Arc::new(set.rules.clone()), loaded: Instant::now() });
    }

    async fn rules_from_database(&self) -> Result<RuleSet, RiskError> {
        let row = sqlx::query("SELECT version, document FROM rule_sets ORDER BY version DESC LIMIT 1")
            .fetch_optional(self.db.pool())
            .await?;
        let set = match row {
            None => RuleSet { version: 0, rules: Rules::default() },
            Some(row) => {
                let document: String = row.try_get("document")?;
                let rules: Rules = serde_json::from_str(&document).map_err(|_| RiskError::Corrupt("rule_sets"))?;
                RuleSet { version: row.try_get("version")?, rules }
            }
        };
        Ok(set)
    }

    /// Puts `rules` in force as the next version. Other replicas follow within the reload
    /// interval.
    pub async fn set_rules(&self, rules: Rules, by: &str) -> Result<RuleSet, RiskError> {
        rules.validate().map_err(RiskError::Validation)?;
        let document = serde_json::to_string(&rules).map_err(|_| RiskError::Corrupt("rules"))?;
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM rule_sets").fetch_one(&mut *tx).await?;
        let version = row.try_get::<i64, _>("v")? + 1;
        let inserted =
            sqlx::query("INSERT INTO rule_sets (version, document, created_by, created_at) VALUES (?, ?, ?, ?)")
                .bind(version)
                .bind(&document)
                .bind(by)
                .bind(fintech_telemetry::now_rfc3339())
                .execute(&mut *tx)
                .await;
        match inserted {
            // Another admin's change took this version first: theirs stands, ask again.
            Err(e) if fintech_db::is_unique_violation(&e) => return Err(RiskError::RulesChanged),
            other => other?,
        };
        let data = serde_json::json!({ "version": version, "by": by });
        fintech_events::outbox::stage(
            &mut tx,
            TOPIC,
            &EventEnvelope::new("risk.rules_changed", SERVICE, "rules", data),
        )
        .await?;
        tx.commit().await?;
        self.waker.notify_one();
        if self.shared.is_shared() && !self.shared.offer(RULES_KEY, version, &rules).await {
            // The other replicas may serve the earlier version until Redis lets it expire.
            tracing::warn!(version, "the new risk rules could not be shared through Redis");
        }
        let set = RuleSet { version, rules };
        self.keep(&set).await;
        tracing::info!(target: "security", event = "risk_rules_changed", version, by = %by, "risk rules changed");
        Ok(set)
    }

    async fn find(&self, id: &str) -> Result<Option<(Assessment, Option<String>)>, RiskError> {
        let sql = format!("SELECT {COLUMNS} FROM assessments WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.db.pool()).await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn assessment(&self, id: &str) -> Result<Option<Assessment>, RiskError> {
        if !valid_id(id) {
            return Ok(None);
        }
        Ok(self.find(id).await?.map(|(a, _)| a))
    }

    /// The newest assessments, optionally of one decision, newest first.
    pub async fn recent(&self, decision: Option<Decision>, limit: u32) -> Result<Vec<Assessment>, RiskError> {
        let (filter, value) = match decision {
            Some(d) => ("WHERE decision = ?", d.as_str()),
            None => ("WHERE decision <> ?", ""),
        };
        let sql = format!("SELECT {COLUMNS} FROM assessments {filter} ORDER BY created_ms DESC, id DESC LIMIT ?");
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).bind(i64::from(limit)).fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| from_row(r).map(|(a, _)| a)).collect()
    }

    /// Judges `req` and records the verdict.
    pub async fn assess(&self, req: &AssessmentRequest) -> Result<Assessment, RiskError> {
        req.validate()?;
        if let Some(prior) = self.replay(req).await? {
            return Ok(prior);
        }
        let set = self.rules().await?;
        let now = now_ms();
        let mut prior_attempts = Vec::with_capacity(set.rules.velocity.len());
        for rule in &set.rules.velocity {
            let value = match rule.key {
                VelocityKey::Card => req.card_fingerprint.as_deref(),
                VelocityKey::Customer => Some(req.customer_id.as_str()),
                VelocityKey::Ip => req.ip.as_deref(),
            };
            prior_attempts.push(match value {
                None => 0,
                Some(v) => self.count_since(rule.key, v, now - window_ms(rule.window_seconds)).await?,
            });
        }
        let attempt = rules::Attempt {
            amount_minor: req.amount_minor,
            currency: &req.currency,
            bin: req.bin.as_deref(),
            prior_attempts: &prior_attempts,
        };
        let verdict = rules::evaluate(&set.rules, &attempt);
        let assessment = Assessment {
            id: req.id.clone(),
            customer_id: req.customer_id.clone(),
            amount_minor: req.amount_minor,
            currency: req.currency.clone(),
            score: verdict.score,
            decision: verdict.decision,
            reasons: verdict.reasons,
            country: verdict.country,
            rules_version: set.version,
            created_at: fintech_telemetry::now_rfc3339(),
        };
        match self.record(req, &assessment, now).await {
            // The same id assessed concurrently: answer the verdict that was recorded.
            Err(RiskError::Db(e)) if fintech_db::is_unique_violation(&e) => {
                self.replay(req).await?.ok_or(RiskError::Corrupt("assessments"))
            }
            Err(e) => Err(e),
            Ok(()) => {
                if assessment.decision != Decision::Approve {
                    tracing::warn!(target: "security", event = "risk_flagged", assessment_id = %assessment.id,
                        decision = assessment.decision.as_str(), score = assessment.score, "an attempt was flagged by the risk rules");
                }
                Ok(assessment)
            }
        }
    }

    /// The recorded verdict of `req.id`; another attempt under the same id is refused.
    async fn replay(&self, req: &AssessmentRequest) -> Result<Option<Assessment>, RiskError> {
        let Some((prior, fingerprint)) = self.find(&req.id).await? else { return Ok(None) };
        let same = prior.customer_id == req.customer_id
            && prior.amount_minor == req.amount_minor
            && prior.currency == req.currency
            && fingerprint == req.card_fingerprint;
        if same { Ok(Some(prior)) } else { Err(RiskError::IdReused) }
    }

    async fn count_since(&self, key: VelocityKey, value: &str, since_ms: i64) -> Result<u64, RiskError> {
        let column = match key {
            VelocityKey::Card => "card_fingerprint",
            VelocityKey::Customer => "customer_id",
            VelocityKey::Ip => "ip",
        };
        let sql = format!("SELECT COUNT(*) AS n FROM assessments WHERE {column} = ? AND created_ms >= ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).bind(since_ms).fetch_one(self.db.pool()).await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    async fn record(&self, req: &AssessmentRequest, a: &Assessment, now: i64) -> Result<(), RiskError> {
        let reasons = serde_json::to_string(&a.reasons).map_err(|_| RiskError::Corrupt("reasons"))?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO assessments (id, customer_id, card_fingerprint, bin, country, ip, amount_minor, currency, \
             score, decision, reasons, rules_version, created_ms, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.customer_id)
        .bind(&req.card_fingerprint)
        .bind(&req.bin)
        .bind(&a.country)
        .bind(&req.ip)
        .bind(a.amount_minor)
        .bind(&a.currency)
        .bind(i64::from(a.score))
        .bind(a.decision.as_str())
        .bind(&reasons)
        .bind(a.rules_version)
        .bind(now)
        .bind(&a.created_at)
        .execute(&mut *tx)
        .await?;
        // Approvals are the bulk and say nothing new; flagged attempts go to the audit log.
        if a.decision != Decision::Approve {
            let data = serde_json::json!({
                "assessment_id": a.id, "customer_id": a.customer_id, "decision": a.decision,
                "score": a.score, "reasons": a.reasons, "rules_version": a.rules_version,
            });
            let event =
                EventEnvelope::new(format!("risk.{}", a.decision.as_str()), SERVICE, a.customer_id.clone(), data);
            fintech_events::outbox::stage(&mut tx, TOPIC, &event).await?;
        }
        tx.commit().await?;
        if a.decision != Decision::Approve {
            self.waker.notify_one();
        }
        Ok(())
    }
}

fn window_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.min(rules::MAX_WINDOW_SECONDS) * 1000).unwrap_or(i64::MAX)
}
