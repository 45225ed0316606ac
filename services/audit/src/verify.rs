//! Verification: recompute the chain from the stored records and name the first break.
//!
//! What it proves, and what it cannot: a record changed in place, a record removed from the
//! middle, records re-linked or renumbered, and the newest records removed without the head
//! being moved back, are all found. Someone who can write the database can also rewrite the
//! whole chain from some record on, recomputing every hash, and move the head to match: that
//! chain is consistent and verifies. Only a head noted earlier and kept elsewhere (an anchor:
//! `GET /api/audit/v1/head` written to a ticket, a mail, another system) shows it, through
//! `expect_head`. Note anchors regularly, somewhere the database's writers cannot reach.

use std::fmt;

use fintech_db::Db;

use crate::chain::{GENESIS_HASH, record_hash};
use crate::error::AuditError;
use crate::store::{self, StoredRecord};

/// Records read per query.
pub const PAGE_SIZE: u32 = 1000;

/// The first break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Record `seq`'s fields do not give its hash: it was changed after it was written.
    Altered { seq: u64 },
    /// The records between `after_seq` and `next_seq` are gone.
    Removed { after_seq: u64, next_seq: u64 },
    /// Record `seq`'s `prev_hash` is not the previous record's hash (genesis for record 1):
    /// the previous record was rewritten with a fresh hash, or this one was re-linked.
    Relinked { seq: u64 },
    /// A record numbered `seq`, which the chain never assigns (below 1, or out of order).
    Inserted { seq: i64 },
    /// The head row is gone.
    HeadMissing,
    /// The head disagrees with the last record: the newest records were removed (or the head
    /// was changed). `head_seq` is as stored.
    HeadMismatch { head_seq: i64, head_hash: String, last_seq: u64, last_hash: String },
    /// The anchor `expect_head` is not in the chain: record `seq` has another hash
    /// (`found_hash`), or is not there at all (`None`).
    AnchorMismatch { seq: u64, expected_hash: String, found_hash: Option<String> },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Altered { seq } => {
                write!(f, "record {seq} was altered: its fields do not give its hash")
            }
            Problem::Removed { after_seq, next_seq } if next_seq.saturating_sub(*after_seq) == 2 => {
                write!(
                    f,
                    "record {} was removed: record {after_seq} is followed by record {next_seq}",
                    after_seq.saturating_add(1)
                )
            }
            Problem::Removed { after_seq, next_seq } => write!(
                f,
                "records {} to {} were removed: record {after_seq} is followed by record {next_seq}",
                after_seq.saturating_add(1),
                next_seq.saturating_sub(1)
            ),
            Problem::Relinked { seq: 1 } => {
                write!(f, "record 1 does not start from the genesis hash: it was re-linked")
            }
            Problem::Relinked { seq } => write!(
                f,
                "record {seq} does not link to record {prev}: record {prev} was rewritten with a new hash, \
                 or record {seq} was re-linked",
                prev = seq.saturating_sub(1)
            ),
            Problem::Inserted { seq } => {
                write!(f, "a record numbered {seq} is in the log, out of the chain's order: it was inserted")
            }
            Problem::HeadMissing => write!(f, "the chain's head row (audit_head) is gone"),
            Problem::HeadMismatch { head_seq, head_hash, last_seq: 0, .. } => write!(
                f,
                "the head says record {head_seq} with hash {head_hash}, but the log has no records: \
                 records were removed"
            ),
            Problem::HeadMismatch { head_seq, head_hash, last_seq, last_hash } => write!(
                f,
                "the head says record {head_seq} with hash {head_hash}, but the last record is {last_seq} with \
                 hash {last_hash}: the newest records were removed, or the head was changed"
            ),
            Problem::AnchorMismatch { seq, expected_hash, found_hash: Some(found) } => write!(
                f,
                "record {seq} has hash {found}, not the expected {expected_hash}: the chain was rewritten \
                 since that head was noted"
            ),
            Problem::AnchorMismatch { seq, expected_hash, found_hash: None } => write!(
                f,
                "record {seq} (expected hash {expected_hash}) is not in the log: the chain was cut back \
                 since that head was noted"
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records checked and found sound (up to the first problem).
    pub records: u64,
    /// The head row as read (0 and empty when it is gone or holds a negative seq).
    pub head_seq: u64,
    pub head_hash: String,
    /// The first problem, in seq order; `None`: the chain is sound.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The chain walked record by record, without a database: fed records in seq order, it names
/// the first break.
#[derive(Debug, Clone)]
pub struct Checker {
    /// The seq the next record must have.
    next_seq: u64,
    /// The hash the next record must link to.
    last_hash: String,
    records: u64,
    anchor: Option<(u64, String)>,
    anchor_seen: bool,
}

impl Checker {
    pub fn new(anchor: Option<(u64, String)>) -> Self {
        Checker { next_seq: 1, last_hash: GENESIS_HASH.to_owned(), records: 0, anchor, anchor_seen: false }
    }

    /// Records found sound so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Checks the next record, in seq order. The seq comes first (a gap is a removal), then
    /// the link to the previous record, then the record's own hash, then the anchor.
    pub fn check(&mut self, record: &StoredRecord) -> Result<(), Problem> {
        let seq = match u64::try_from(record.seq) {
            Ok(seq) if seq >= self.next_seq => seq,
            _ => return Err(Problem::Inserted { seq: record.seq }),
        };
        if seq != self.next_seq {
            return Err(Problem::Removed { after_seq: self.next_seq - 1, next_seq: seq });
        }
        if record.prev_hash != self.last_hash {
            return Err(Problem::Relinked { seq });
        }
        if record_hash(&record.hash_input(seq)) != record.hash {
            return Err(Problem::Altered { seq });
        }
        if let Some((anchor_seq, anchor_hash)) = &self.anchor
            && *anchor_seq == seq
        {
            self.anchor_seen = true;
            if *anchor_hash != record.hash {
                return Err(Problem::AnchorMismatch {
                    seq,
                    expected_hash: anchor_hash.clone(),
                    found_hash: Some(record.hash.clone()),
                });
            }
        }
        self.last_hash.clone_from(&record.hash);
        self.next_seq = seq + 1;
        self.records += 1;
        Ok(())
    }

    /// After the last record: the head must name it, and the anchor must have been met.
    pub fn finish(&self, head: Option<&(i64, String)>) -> Result<(), Problem> {
        let last_seq = self.next_seq - 1;
        let Some((head_seq, head_hash)) = head else {
            return Err(Problem::HeadMissing);
        };
        if u64::try_from(*head_seq).ok() != Some(last_seq) || *head_hash != self.last_hash {
            return Err(Problem::HeadMismatch {
                head_seq: *head_seq,
                head_hash: head_hash.clone(),
                last_seq,
                last_hash: self.last_hash.clone(),
            });
        }
        if let Some((anchor_seq, anchor_hash)) = &self.anchor
            && !self.anchor_seen
        {
            // Seq 0 is the empty log, whose head is the genesis hash.
            let found_hash = (*anchor_seq == 0).then(|| GENESIS_HASH.to_owned());
            if found_hash.as_deref() != Some(anchor_hash.as_str()) {
                return Err(Problem::AnchorMismatch {
                    seq: *anchor_seq,
                    expected_hash: anchor_hash.clone(),
                    found_hash,
                });
            }
        }
        Ok(())
    }
}

/// Verifies the whole chain of `db`, the audit service's database, without writing anything.
///
/// Reads the head and the records in seq order, [`PAGE_SIZE`] at a time, in one read
/// transaction (one snapshot: appends that commit meanwhile are not seen, so the head and the
/// records agree). `progress` is called after each page with the number of records checked so
/// far. `expect_head` is an anchor, a (seq, hash) noted earlier: the chain must hold that record
/// with that hash. Stops at the first problem and reports it; an error means the check could
/// not run (no audit tables: [`AuditError::NotInstalled`]; the database).
///
/// A chain rewritten from some record on together with its head verifies: see the module's
/// documentation; only an anchor kept elsewhere catches that.
pub async fn verify(
    db: &Db,
    mut progress: impl FnMut(u64),
    expect_head: Option<(u64, String)>,
) -> Result<Report, AuditError> {
    let mut tx = db.pool().begin().await?;
    if !store::tables_present(&mut tx, db.engine()).await? {
        return Err(AuditError::NotInstalled);
    }
    let head = store::head(&mut tx).await?;
    let mut checker = Checker::new(expect_head);
    let mut problem = None;
    let mut after = i64::MIN;
    'pages: loop {
        let page = store::records_after(&mut tx, after, PAGE_SIZE).await?;
        for record in &page {
            if let Err(found) = checker.check(record) {
                problem = Some(found);
                break 'pages;
            }
        }
        progress(checker.records());
        match page.last() {
            Some(last) if page.len() >= PAGE_SIZE as usize => after = last.seq,
            _ => break,
        }
    }
    // Read only: nothing to keep.
    tx.rollback().await?;
    let problem = problem.or_else(|| checker.finish(head.as_ref()).err());
    let (head_seq, head_hash) = match head {
        Some((seq, hash)) => match u64::try_from(seq) {
            Ok(seq) => (seq, hash),
            Err(_) => (0, String::new()),
        },
        None => (0, String::new()),
    };
    Ok(Report { records: checker.records(), head_seq, head_hash, problem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::HashInput;

    /// A sound chain of `n` records, as `append` would write it.
    fn chain(n: u64) -> Vec<StoredRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut out = Vec::new();
        for seq in 1..=n {
            let mut record = StoredRecord {
                seq: i64::try_from(seq).unwrap_or_default(),
                event_id: format!("e{seq}"),
                topic: "payments.events".into(),
                event_type: "payment.captured".into(),
                source: "payments".into(),
                subject: format!("pay_{seq}"),
                occurred_at: "2026-01-01T00:00:00.000Z".into(),
                recorded_at: "2026-01-01T00:00:01.000Z".into(),
                data: format!("{{\"n\":{seq}}}"),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            record.hash = rehash(&record);
            prev.clone_from(&record.hash);
            out.push(record);
        }
        out
    }

    fn rehash(record: &StoredRecord) -> String {
        let seq = u64::try_from(record.seq).unwrap_or_default();
        let input: HashInput<'_> = record.hash_input(seq);
        record_hash(&input)
    }

    fn head_of(records: &[StoredRecord]) -> (i64, String) {
        records.last().map_or((0, GENESIS_HASH.to_owned()), |r| (r.seq, r.hash.clone()))
    }

    fn run(records: &[StoredRecord], head: Option<(i64, String)>, anchor: Option<(u64, String)>) -> Option<Problem> {
        let mut checker = Checker::new(anchor);
        for record in records {
            if let Err(problem) = checker.check(record) {
                return Some(problem);
            }
        }
        checker.finish(head.as_ref()).err()
    }

    #[test]
    fn a_sound_chain_and_the_empty_one_verify() {
        let records = chain(5);
        assert_eq!(run(&records, Some(head_of(&records)), None), None);
        assert_eq!(run(&[], Some((0, GENESIS_HASH.to_owned())), None), None);
        assert_eq!(run(&[], Some((0, GENESIS_HASH.to_owned())), Some((0, GENESIS_HASH.to_owned()))), None);
        let anchor = (3, records[2].hash.clone());
        assert_eq!(run(&records, Some(head_of(&records)), Some(anchor)), None);
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let records = chain(5);
        let head = Some(head_of(&records));

        let mut altered = records.clone();
        altered[2].data = "{\"n\":999}".into();
        assert_eq!(run(&altered, head.clone(), None), Some(Problem::Altered { seq: 3 }));

        let mut removed = records.clone();
        removed.remove(2);
        assert_eq!(run(&removed, head.clone(), None), Some(Problem::Removed { after_seq: 2, next_seq: 4 }));

        // Record 3 rewritten with a fresh hash: 3 verifies alone, 4 no longer links to it.
        let mut rewritten = records.clone();
        rewritten[2].data = "{\"n\":999}".into();
        rewritten[2].hash = rehash(&rewritten[2]);
        assert_eq!(run(&rewritten, head.clone(), None), Some(Problem::Relinked { seq: 4 }));

        // Record 3 removed and the later ones renumbered (hashes recomputed for the new seqs).
        let mut renumbered = records.clone();
        renumbered.remove(2);
        for r in renumbered.iter_mut().skip(2) {
            r.seq -= 1;
            r.hash = rehash(r);
        }
        assert_eq!(run(&renumbered, head.clone(), None), Some(Problem::Relinked { seq: 3 }));

        let mut truncated = records.clone();
        truncated.pop();
        assert!(matches!(
            run(&truncated, head.clone(), None),
            Some(Problem::HeadMismatch { head_seq: 5, last_seq: 4, .. })
        ));
        assert_eq!(run(&records, None, None), Some(Problem::HeadMissing));

        let mut inserted = records.clone();
        inserted[0].seq = 0;
        assert_eq!(run(&inserted, head.clone(), None), Some(Problem::Inserted { seq: 0 }));
    }

    #[test]
    fn a_consistent_rewrite_is_caught_only_by_an_anchor() {
        let records = chain(5);
        let anchor = (5, records[4].hash.clone());
        // Cut back to 4 records with the head moved to match: sound on its own.
        let cut = records[..4].to_vec();
        assert_eq!(run(&cut, Some(head_of(&cut)), None), None);
        assert_eq!(
            run(&cut, Some(head_of(&cut)), Some(anchor.clone())),
            Some(Problem::AnchorMismatch { seq: 5, expected_hash: anchor.1.clone(), found_hash: None })
        );
        let wrong = (5, "f".repeat(64));
        assert_eq!(
            run(&records, Some(head_of(&records)), Some(wrong.clone())),
            Some(Problem::AnchorMismatch { seq: 5, expected_hash: wrong.1, found_hash: Some(anchor.1) })
        );
    }

    #[test]
    fn problems_read_as_sentences() {
        assert_eq!(
            Problem::Removed { after_seq: 2, next_seq: 4 }.to_string(),
            "record 3 was removed: record 2 is followed by record 4"
        );
        assert_eq!(
            Problem::Removed { after_seq: 2, next_seq: 6 }.to_string(),
            "records 3 to 5 were removed: record 2 is followed by record 6"
        );
        assert!(Problem::Altered { seq: 7 }.to_string().starts_with("record 7 was altered"));
    }
}
