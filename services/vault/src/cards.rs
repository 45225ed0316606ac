//! The vault itself: cards in, tokens out; card numbers used only here.

use std::sync::Arc;

use fintech_db::Db;
use fintech_db::sqlx::{self, Row, any::AnyRow};
use serde::{Deserialize, Serialize};

use crate::acquirer::{Acquirer, AcquirerError, Authorization, Outcome};
use crate::domain::{Brand, Cvv, Expiry, Pan};
use crate::error::VaultError;
use crate::keys::{self, KeyStore, Sealed};
use fintech_kit::security::SecurityLog;

/// A card as anyone but vault sees it: never more than BIN and last 4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CardView {
    /// The card's token (`card_...`), what other services keep.
    pub token: String,
    pub customer_id: String,
    pub brand: Brand,
    /// The first 6 digits (the issuer's identification number).
    pub bin: String,
    /// BIN and last 4 (`424242******4242`).
    pub masked: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    /// Keyed HMAC of the number: equal for the same card, useless without vault's key.
    pub fingerprint: String,
    pub created_at: String,
}

/// What payments asks: authorize `amount_minor` on the card `token` of `customer_id`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChargeRequest {
    /// The caller's id for this charge; a retry with the same id is never charged twice.
    pub charge_id: String,
    pub token: String,
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// The outcome of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChargeResult {
    pub charge_id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub brand: Brand,
    pub last4: String,
}

struct Row_ {
    view: CardView,
    sealed: Sealed,
}

const COLUMNS: &str = "token, customer_id, fingerprint, brand, bin, last4, exp_month, exp_year, pan_ciphertext, \
    dek_wrapped, kek_id, created_at";

fn from_row(r: &AnyRow) -> Result<Row_, sqlx::Error> {
    let bin: String = r.try_get("bin")?;
    let last4: String = r.try_get("last4")?;
    let month: i64 = r.try_get("exp_month")?;
    let year: i64 = r.try_get("exp_year")?;
    Ok(Row_ {
        view: CardView {
            token: r.try_get("token")?,
            customer_id: r.try_get("customer_id")?,
            brand: Brand::parse(&r.try_get::<String, _>("brand")?),
            masked: format!("{bin}******{last4}"),
            bin,
            last4,
            exp_month: u8::try_from(month).unwrap_or(0),
            exp_year: u16::try_from(year).unwrap_or(0),
            fingerprint: r.try_get("fingerprint")?,
            created_at: r.try_get("created_at")?,
        },
        sealed: Sealed {
            pan_ciphertext: r.try_get("pan_ciphertext")?,
            dek_wrapped: r.try_get("dek_wrapped")?,
            kek_id: r.try_get("kek_id")?,
        },
    })
}

/// The vault: its database, its key store, its acquirer.
#[derive(Debug, Clone)]
pub struct Vault {
    db: Db,
    keys: Arc<dyn KeyStore>,
    acquirer: Arc<dyn Acquirer>,
    /// Held for reading while a card is sealed and stored, for writing while the KEK rotates:
    /// no card is stored under a KEK that rotation has just retired.
    rotation: Arc<tokio::sync::RwLock<()>>,
    /// Security records (cards stored, card numbers used, keys rotated) for the audit log.
    security: SecurityLog,
}

/// What a KEK rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rotation {
    /// The new primary KEK.
    pub kek_id: String,
    /// Cards whose data key was re-wrapped.
    pub rewrapped: usize,
    /// KEKs that unwrap nothing any more.
    pub retired: Vec<String>,
}

/// Whether `token` has the shape of a card token (`card_` and up to 35 letters and digits).
pub fn valid_token(token: &str) -> bool {
    token.len() <= 40 && token.starts_with("card_") && token[5..].bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Vault {
    pub fn new(db: Db, keys: Arc<dyn KeyStore>, acquirer: Arc<dyn Acquirer>, security: SecurityLog) -> Vault {
        Vault { db, keys, acquirer, rotation: Arc::new(tokio::sync::RwLock::new(())), security }
    }

    /// Rotates the KEK: a new primary, every card's data key re-wrapped with it (numbers are
    /// not decrypted), the old KEKs retired. With a key store shared by replicas (Cloud KMS), it
    /// waits until every replica wraps with the new primary and re-wraps again before retiring.
    /// `progress(done, total)` follows the first re-wrap.
    pub async fn rotate_kek(&self, by: &str, progress: impl FnMut(usize, usize)) -> Result<Rotation, VaultError> {
        let _exclusive = self.rotation.write().await;
        let kek_id = self.keys.add_primary().await?;
        let mut rewrapped = self.rewrap_all(500, progress).await?;
        // Other replicas may still wrap new cards with the old primary until they read the new
        // one: wait that out, then re-wrap what they stored, before the old KEKs stop working.
        let delay = self.keys.propagation_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            rewrapped += self.rewrap_all(500, |_, _| {}).await?;
        }
        let retired = self.keys.retire_all_but_primary().await?;
        let (count, retired_ids) = (rewrapped.to_string(), retired.join(","));
        let fields =
            [("kek_id", kek_id.as_str()), ("rewrapped", count.as_str()), ("retired", retired_ids.as_str()), ("by", by)];
        self.security.note("kek_rotated", &kek_id, &fields).await;
        Ok(Rotation { kek_id, rewrapped, retired })
    }

    async fn find(&self, token: &str) -> Result<Option<Row_>, VaultError> {
        if !valid_token(token) {
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM cards WHERE token = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token).fetch_optional(self.db.pool()).await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The card `token`, if it exists.
    pub async fn card(&self, token: &str) -> Result<Option<CardView>, VaultError> {
        Ok(self.find(token).await?.map(|r| r.view))
    }

    /// The cards of `customer_id`, oldest first.
    pub async fn cards_of(&self, customer_id: &str) -> Result<Vec<CardView>, VaultError> {
        let sql = format!("SELECT {COLUMNS} FROM cards WHERE customer_id = ? ORDER BY created_at, token");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(customer_id).fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| from_row(r).map(|r| r.view).map_err(VaultError::from)).collect()
    }

    /// Stores `pan` for `customer_id` and answers its token; the same card of the same
    /// customer answers the token it already has (`false`: not new).
    pub async fn tokenize(&self, customer_id: &str, pan: &Pan, expiry: Expiry) -> Result<(CardView, bool), VaultError> {
        let fingerprint = self.keys.fingerprint(pan).await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cards WHERE customer_id = ? AND fingerprint = ?"
        )))
        .bind(customer_id)
        .bind(&fingerprint)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some(row) = existing {
            let mut view = from_row(&row)?.view;
            // The same card renewed: keep its new expiry.
            if (view.exp_year, view.exp_month) != (expiry.year, expiry.month) {
                let token = view.token.clone();
                self.db
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query("UPDATE cards SET exp_month = ?, exp_year = ? WHERE token = ?")
                                .bind(i64::from(expiry.month))
                                .bind(i64::from(expiry.year))
                                .bind(token)
                                .execute(&mut *conn)
                                .await
                                .map(|_| ())
                        })
                    })
                    .await?;
                (view.exp_month, view.exp_year) = (expiry.month, expiry.year);
            }
            return Ok((view, false));
        }
        let _no_rotation = self.rotation.read().await;
        let token = format!("card_{}", uuid::Uuid::now_v7().simple());
        let sealed = keys::seal_pan(self.keys.as_ref(), &token, pan).await?;
        let view = CardView {
            token: token.clone(),
            customer_id: customer_id.to_owned(),
            brand: pan.brand(),
            masked: pan.masked(),
            bin: pan.bin().to_owned(),
            last4: pan.last4().to_owned(),
            exp_month: expiry.month,
            exp_year: expiry.year,
            fingerprint,
            created_at: fintech_telemetry::now_rfc3339(),
        };
        let (v, s, bin) = (view.clone(), sealed, pan.bin().to_owned());
        let inserted = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO cards ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    )))
                    .bind(&v.token)
                    .bind(&v.customer_id)
                    .bind(&v.fingerprint)
                    .bind(v.brand.as_str())
                    .bind(bin)
                    .bind(&v.last4)
                    .bind(i64::from(v.exp_month))
                    .bind(i64::from(v.exp_year))
                    .bind(&s.pan_ciphertext)
                    .bind(&s.dek_wrapped)
                    .bind(&s.kek_id)
                    .bind(&v.created_at)
                    .execute(&mut *conn)
                    .await
                    .map(|_| ())
                })
            })
            .await;
        match inserted {
            // The same card stored concurrently: answer that one.
            Err(e) if fintech_db::is_unique_violation(&e) => Box::pin(self.tokenize(customer_id, pan, expiry)).await,
            Err(e) => Err(e.into()),
            Ok(()) => {
                self.security.note("card_tokenized", &view.token, &[("customer_id", customer_id)]).await;
                Ok((view, true))
            }
        }
    }

    /// Authorizes a charge on a card at the acquirer. The card must belong to the named
    /// customer (else: not found). Every use of a card number is recorded and logged.
    pub async fn charge(
        &self,
        caller: &str,
        req: &ChargeRequest,
        cvv: Option<&str>,
    ) -> Result<ChargeResult, VaultError> {
        // Not while the KEK rotates: the row read here must not be re-wrapped under our feet.
        let _no_rotation = self.rotation.read().await;
        let row = self.find(&req.token).await?.filter(|r| r.view.customer_id == req.customer_id);
        let Some(row) = row else { return Err(VaultError::NotFound) };
        let cvv =
            cvv.map(|c| Cvv::parse(c, row.view.brand)).transpose().map_err(|e| VaultError::Validation(vec![e]))?;
        // One charge id, one card and amount: a retry, never another charge.
        let prior = sqlx::query("SELECT token, amount_minor, currency, outcome FROM card_uses WHERE charge_id = ?")
            .bind(&req.charge_id)
            .fetch_optional(self.db.pool())
            .await?;
        if let Some(p) = &prior {
            let same = p.try_get::<String, _>("token")? == req.token
                && p.try_get::<i64, _>("amount_minor")? == req.amount_minor
                && p.try_get::<String, _>("currency")? == req.currency;
            if !same {
                return Err(VaultError::ChargeIdReused);
            }
        }
        let expiry = Expiry { month: row.view.exp_month, year: row.view.exp_year };
        let (year, month) = Expiry::current();
        let outcome = if expiry.is_past(year, month) {
            Ok(Outcome::Declined { decline_code: "expired_card".into() })
        } else {
            // Recorded before the number is decrypted: no use of a card number goes unaudited.
            let fields =
                [("charge_id", req.charge_id.as_str()), ("caller", caller), ("customer_id", req.customer_id.as_str())];
            self.security.record("card_number_used", &req.token, &fields).await?;
            let pan = keys::open_pan(self.keys.as_ref(), &req.token, &row.sealed).await?;
            let auth = Authorization {
                charge_id: &req.charge_id,
                pan: &pan,
                expiry,
                cvv: cvv.as_ref(),
                amount_minor: req.amount_minor,
                currency: &req.currency,
            };
            self.acquirer.authorize(auth).await
        };
        let recorded = match &outcome {
            Ok(Outcome::Approved { .. }) => "approved",
            Ok(Outcome::Declined { .. }) => "declined",
            Err(_) => "unknown",
        };
        if let Some(p) = &prior {
            // A retry after an unknown outcome: record the outcome now known.
            let first: String = p.try_get("outcome").unwrap_or_default();
            if first == "unknown" && recorded != "unknown" {
                let (id, outcome_text) = (req.charge_id.clone(), recorded.to_owned());
                self.db
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query("UPDATE card_uses SET outcome = ? WHERE charge_id = ? AND outcome = 'unknown'")
                                .bind(outcome_text)
                                .bind(id)
                                .execute(&mut *conn)
                                .await
                                .map(|_| ())
                        })
                    })
                    .await?;
            }
        } else {
            let (id, token, caller, amount, currency, at) = (
                req.charge_id.clone(),
                req.token.clone(),
                caller.to_owned(),
                req.amount_minor,
                req.currency.clone(),
                fintech_telemetry::now_rfc3339(),
            );
            let outcome_text = recorded.to_owned();
            let saved = self
                .db
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO card_uses (charge_id, token, caller, amount_minor, currency, outcome, created_at) \
                             VALUES (?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(token)
                        .bind(caller)
                        .bind(amount)
                        .bind(currency)
                        .bind(outcome_text)
                        .bind(at)
                        .execute(&mut *conn)
                        .await
                        .map(|_| ())
                    })
                })
                .await;
            match saved {
                Err(e) if !fintech_db::is_unique_violation(&e) => return Err(e.into()),
                _ => {}
            }
        }
        let outcome = outcome.map_err(|e| match e {
            AcquirerError::Timeout => VaultError::AcquirerTimeout,
            AcquirerError::Unavailable => VaultError::AcquirerUnavailable,
        })?;
        Ok(ChargeResult { charge_id: req.charge_id.clone(), outcome, brand: row.view.brand, last4: row.view.last4 })
    }

    /// Re-wraps every card's data key with the primary KEK, `batch` cards at a time, calling
    /// `progress(done, total)` after each batch. Card numbers are not decrypted.
    pub async fn rewrap_all(&self, batch: usize, mut progress: impl FnMut(usize, usize)) -> Result<usize, VaultError> {
        let primary = self.keys.primary().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM cards WHERE kek_id <> ?")
            .bind(&primary)
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        let total = usize::try_from(total).unwrap_or(0);
        let mut done = 0;
        loop {
            let sql = format!("SELECT {COLUMNS} FROM cards WHERE kek_id <> ? ORDER BY token LIMIT {}", batch.max(1));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&primary).fetch_all(self.db.pool()).await?;
            if rows.is_empty() {
                break;
            }
            let mut moved = Vec::with_capacity(rows.len());
            for r in &rows {
                let row = from_row(r)?;
                moved.push((row.view.token.clone(), keys::rewrap(self.keys.as_ref(), &row.sealed, &primary).await?));
            }
            let n = moved.len();
            self.db
                .write(move |conn| {
                    Box::pin(async move {
                        for (token, sealed) in moved {
                            sqlx::query("UPDATE cards SET dek_wrapped = ?, kek_id = ? WHERE token = ?")
                                .bind(sealed.dek_wrapped)
                                .bind(sealed.kek_id)
                                .bind(token)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .await?;
            done += n;
            progress(done, total);
        }
        Ok(done)
    }

    /// How many cards each KEK wraps.
    pub async fn cards_per_kek(&self) -> Result<Vec<(String, i64)>, VaultError> {
        let rows = sqlx::query("SELECT kek_id, COUNT(*) AS n FROM cards GROUP BY kek_id ORDER BY kek_id")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("kek_id")?, r.try_get("n")?))).collect()
    }
}
