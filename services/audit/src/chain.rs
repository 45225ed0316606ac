//! The hash chain: how a record is encoded and hashed, and how an event becomes the next record.
//!
//! Each record's `hash` is the lowercase hex SHA-256 of a canonical encoding of its fields,
//! the previous record's hash among them, so changing, removing or reordering a record breaks
//! every link after it. The encoding is a sequence of fields, each written as
//!
//! ```text
//! <length of the field in bytes, in decimal ASCII> ":" <the field's bytes> ","
//! ```
//!
//! in this order:
//!
//! 1. the recipe name, [`RECIPE`] (`fintech-audit-v1`), so a later recipe cannot collide with this one;
//! 2. `prev_hash`: the previous record's `hash` ([`GENESIS_HASH`], 64 zeros, for record 1);
//! 3. `seq`, in decimal ASCII without leading zeros;
//! 4. `event_id`, 5. `topic`, 6. `event_type`, 7. `source`, 8. `subject` (the event's ordering key),
//!    9. `occurred_at` (the event's time), 10. `recorded_at`: each as stored, UTF-8;
//! 11. `data`: the event's data exactly as stored (JSON text, UTF-8).
//!
//! Length prefixes make the encoding unambiguous: no two different lists of fields give the same
//! bytes, whatever the fields contain (commas, colons, digits). `data` is serialised once, when
//! the record is appended, and that text is both stored and hashed; verification hashes the
//! stored text again and never re-serialises JSON, so it does not depend on how a JSON library
//! orders keys or escapes characters.

use fintech_db::Db;
use fintech_events::{EventEnvelope, inbox};
use ring::digest;

use crate::error::AuditError;
use crate::store;

/// The name of this hashing recipe, the first field of every encoding.
pub const RECIPE: &str = "fintech-audit-v1";

/// The `prev_hash` of record 1, and the head's hash while the log is empty.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The inbox consumer name under which processed event ids are recorded.
pub const CONSUMER: &str = "audit";

/// Longest event id (the inbox's `event_id` column on MySQL is `VARCHAR(64)`).
pub const MAX_EVENT_ID_BYTES: usize = 64;
/// Longest topic, event type, source or subject (`VARCHAR(255)` on MySQL).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest event time (`VARCHAR(64)` on MySQL).
pub const MAX_TIME_BYTES: usize = 64;
/// Largest event data as JSON text: MySQL's `MEDIUMTEXT`, like the outbox's payload.
pub const MAX_DATA_BYTES: usize = 16 * 1024 * 1024 - 1;

/// The fields a record's hash covers, borrowed from wherever they are (a new event, a stored row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashInput<'a> {
    pub prev_hash: &'a str,
    pub seq: u64,
    pub event_id: &'a str,
    pub topic: &'a str,
    pub event_type: &'a str,
    pub source: &'a str,
    pub subject: &'a str,
    pub occurred_at: &'a str,
    pub recorded_at: &'a str,
    pub data: &'a str,
}

/// The canonical bytes of `input` (see the module's documentation for the recipe).
pub fn encode(input: &HashInput<'_>) -> Vec<u8> {
    let seq = input.seq.to_string();
    let fields: [&[u8]; 11] = [
        RECIPE.as_bytes(),
        input.prev_hash.as_bytes(),
        seq.as_bytes(),
        input.event_id.as_bytes(),
        input.topic.as_bytes(),
        input.event_type.as_bytes(),
        input.source.as_bytes(),
        input.subject.as_bytes(),
        input.occurred_at.as_bytes(),
        input.recorded_at.as_bytes(),
        input.data.as_bytes(),
    ];
    // Room for each field plus its length (at most 20 digits), ':' and ','.
    let size: usize = fields.iter().map(|f| f.len() + 22).sum();
    let mut out = Vec::with_capacity(size);
    for field in fields {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field);
        out.push(b',');
    }
    out
}

/// The record's hash: lowercase hex SHA-256 of [`encode`].
pub fn record_hash(input: &HashInput<'_>) -> String {
    let sum = digest::digest(&digest::SHA256, &encode(input));
    sum.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What [`append`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The event is now record `seq`.
    Recorded { seq: u64, hash: String },
    /// The event was recorded before (a redelivery): nothing changed.
    Duplicate,
}

/// Refuses what the tables cannot hold before anything is written: on MySQL's strict mode an
/// overlong value would fail the insert anyway, and a clear reason beats a database error in
/// the dead letters.
fn check_event(topic: &str, event: &EventEnvelope, data: &str) -> Result<(), AuditError> {
    if event.id.is_empty() {
        return Err(AuditError::InvalidEvent("the event has no id".into()));
    }
    let limits: [(&str, usize, usize); 7] = [
        ("id", event.id.len(), MAX_EVENT_ID_BYTES),
        ("topic", topic.len(), MAX_NAME_BYTES),
        ("type", event.event_type.len(), MAX_NAME_BYTES),
        ("source", event.source.len(), MAX_NAME_BYTES),
        ("ordering_key", event.ordering_key.len(), MAX_NAME_BYTES),
        ("time", event.time.len(), MAX_TIME_BYTES),
        ("data", data.len(), MAX_DATA_BYTES),
    ];
    for (field, len, max) in limits {
        if len > max {
            return Err(AuditError::InvalidEvent(format!("its {field} is {len} bytes, more than the {max} recorded")));
        }
    }
    Ok(())
}

/// Appends `event`, delivered on `topic`, as the next record of the chain.
///
/// One unit of work: the inbox claim (a redelivered event is [`Appended::Duplicate`]), the
/// head locked, the record inserted with the next seq, the head moved to it. Seqs are assigned
/// under the head's lock, so they are contiguous: a gap in the log is a removed record. On
/// SQLite the unit runs in the database's group commit ([`Db::write`]): concurrent events share
/// one transaction and one fsync, each in its own savepoint, one after the other, so each reads
/// the head the previous one moved. On MySQL it is a transaction of its own and the head row is
/// read `FOR UPDATE`.
pub async fn append(db: &Db, topic: &str, event: &EventEnvelope) -> Result<Appended, AuditError> {
    // Serialised once: this exact text is stored and hashed.
    let data = serde_json::to_string(&event.data)?;
    check_event(topic, event, &data)?;
    let engine = db.engine();
    let (event_id, event_type) = (event.id.clone(), event.event_type.clone());
    let (topic, event) = (topic.to_owned(), event.clone());
    let appended = db
        .write(move |tx| {
            Box::pin(async move {
                if !inbox::claim(tx, engine, CONSUMER, &event.id).await? {
                    return Ok(Appended::Duplicate);
                }
                // A failed unit is rolled back whole (the claim with it): these errors say why.
                let refuse = |why: String| fintech_db::sqlx::Error::Protocol(format!("{REFUSED}{why}"));
                let (head_seq, head_hash) =
                    store::lock_head(tx, engine).await?.ok_or_else(|| refuse("the head row is missing".into()))?;
                let seq = u64::try_from(head_seq)
                    .ok()
                    .and_then(|s| s.checked_add(1))
                    .and_then(|s| i64::try_from(s).ok().map(|stored| (s, stored)));
                let Some((seq, stored_seq)) = seq else {
                    return Err(refuse(format!("the head's seq {head_seq} has no successor")));
                };
                // Taken under the lock, so recorded times follow the seqs (as far as the clock does).
                let recorded_at = fintech_telemetry::now_rfc3339();
                let input = HashInput {
                    prev_hash: &head_hash,
                    seq,
                    event_id: &event.id,
                    topic: &topic,
                    event_type: &event.event_type,
                    source: &event.source,
                    subject: &event.ordering_key,
                    occurred_at: &event.time,
                    recorded_at: &recorded_at,
                    data: &data,
                };
                let hash = record_hash(&input);
                store::insert_record(tx, stored_seq, &input, &hash).await?;
                if !store::advance_head(tx, head_seq, stored_seq, &hash, &recorded_at).await? {
                    // Impossible under the lock; refuse rather than fork the chain.
                    return Err(refuse(format!("the head moved from seq {head_seq} while locked")));
                }
                Ok(Appended::Recorded { seq, hash })
            })
        })
        .await
        .map_err(|e| match e {
            fintech_db::sqlx::Error::Protocol(m) if m.starts_with(REFUSED) => {
                let why = &m[REFUSED.len()..];
                if why == "the head row is missing" {
                    AuditError::HeadMissing
                } else {
                    AuditError::Corrupt(why.to_owned())
                }
            }
            other => AuditError::Db(other),
        })?;
    if let Appended::Recorded { seq, .. } = &appended {
        tracing::debug!(seq, event_id = %event_id, event_type = %event_type, "event recorded");
    }
    Ok(appended)
}

/// Marks the errors a unit of [`append`] raises on purpose.
const REFUSED: &str = "audit refused: ";

#[cfg(test)]
mod tests {
    use super::*;

    fn input(fields: [&str; 9]) -> HashInput<'_> {
        let [prev_hash, event_id, topic, event_type, source, subject, occurred_at, recorded_at, data] = fields;
        HashInput { prev_hash, seq: 7, event_id, topic, event_type, source, subject, occurred_at, recorded_at, data }
    }

    const BASE: [&str; 9] = [GENESIS_HASH, "e1", "t", "x.y", "svc", "k", "2026-01-01T00:00:00.000Z", "r", "{}"];

    #[test]
    fn genesis_is_64_zeros() {
        assert_eq!(GENESIS_HASH.len(), 64);
        assert!(GENESIS_HASH.bytes().all(|b| b == b'0'));
    }

    #[test]
    fn encoding_is_length_prefixed_in_order() {
        let bytes = encode(&input(["p", "e", "t", "ty", "s", "k", "o", "r", "{\"a\":1}"]));
        let expected = "16:fintech-audit-v1,1:p,1:7,1:e,1:t,2:ty,1:s,1:k,1:o,1:r,7:{\"a\":1},";
        assert_eq!(String::from_utf8(bytes).unwrap_or_default(), expected);
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_encoding() {
        // Plain concatenation would give the same bytes for each of these pairs.
        let splits = [
            (["ab", "c"], ["a", "bc"]),
            (["a,1:b", ""], ["a", "1:b"]),
            (["", "x"], ["x", ""]),
            (["1:a,", "b"], ["1:a", ",b"]),
        ];
        for ([t1, ty1], [t2, ty2]) in splits {
            let mut a = BASE;
            a[2] = t1;
            a[3] = ty1;
            let mut b = BASE;
            b[2] = t2;
            b[3] = ty2;
            assert_ne!(encode(&input(a)), encode(&input(b)), "{t1:?}|{ty1:?} vs {t2:?}|{ty2:?}");
            assert_ne!(record_hash(&input(a)), record_hash(&input(b)));
        }
        // The data's text against the recorded time beside it.
        let mut a = BASE;
        a[7] = "r,2:{}";
        a[8] = "";
        assert_ne!(encode(&input(a)), encode(&input(BASE)));
    }

    #[test]
    fn every_field_and_the_seq_count() {
        let base = record_hash(&input(BASE));
        for i in 0..BASE.len() {
            let mut changed = BASE;
            changed[i] = "changed";
            assert_ne!(record_hash(&input(changed)), base, "field {i}");
        }
        let mut other_seq = input(BASE);
        other_seq.seq = 8;
        assert_ne!(record_hash(&other_seq), base);
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        let hash = record_hash(&input(BASE));
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(hash, record_hash(&input(BASE)), "deterministic");
    }

    /// The README's worked example, computed independently (Python's hashlib): the recipe an
    /// auditor follows gives the hashes this code writes.
    #[test]
    fn the_readme_example_recomputes() {
        let first = HashInput {
            prev_hash: GENESIS_HASH,
            seq: 1,
            event_id: "0192f7a5-0000-7000-8000-000000000001",
            topic: "payments.events",
            event_type: "payment.captured",
            source: "payments",
            subject: "pay_123",
            occurred_at: "2026-11-26T08:10:00.000Z",
            recorded_at: "2026-11-26T08:10:00.250Z",
            data: r#"{"amount_minor":1500,"currency":"USD"}"#,
        };
        let first_hash = record_hash(&first);
        assert_eq!(first_hash, "dc047c255ae8815bad50801f9cdf36461bf32e1d218d72bb957cf02b009d5118");
        let second = HashInput {
            prev_hash: &first_hash,
            seq: 2,
            event_id: "0192f7a5-0000-7000-8000-000000000002",
            topic: "identity.events",
            event_type: "user.signed_in",
            source: "identity",
            subject: "0192f7a4-6b1e-7c3d-9a55-3f1e2d4c5b6a",
            occurred_at: "2026-11-26T08:11:00.000Z",
            recorded_at: "2026-11-26T08:11:00.020Z",
            data: r#"{"note":"façade"}"#,
        };
        assert_eq!(record_hash(&second), "666562164e35507600574010ef9f290d91d76b5bcff461006ebbf3e5d3116af2");
        assert!(String::from_utf8(encode(&second)).unwrap_or_default().ends_with(r#",18:{"note":"façade"},"#));
    }

    #[test]
    fn oversized_events_are_refused_before_writing() {
        let event = EventEnvelope::new("x.y", "svc", "k".repeat(MAX_NAME_BYTES + 1), serde_json::json!({}));
        assert!(matches!(check_event("t", &event, "{}"), Err(AuditError::InvalidEvent(_))));
        let ok = EventEnvelope::new("x.y", "svc", "k", serde_json::json!({}));
        assert!(check_event("t", &ok, "{}").is_ok());
        let mut no_id = ok.clone();
        no_id.id.clear();
        assert!(check_event("t", &no_id, "{}").is_err());
    }
}
