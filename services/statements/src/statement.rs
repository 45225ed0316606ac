//! Building one account's statement for one closed calendar month (UTC) from the ledger.
//!
//! The ledger keeps postings and each account's current balance, not balances at a date. So the
//! closing balance is the current balance less every posting after the month, and the opening
//! balance the closing one less the month's postings: every figure is integer minor units, and
//! `opening + credits - debits = closing` holds by construction (the tests check it against the
//! ledger's own balance).

use fintech_ledger::client::LedgerClient;
use fintech_ledger::engine::Posting;
use fintech_ledger::error::LedgerError;
use fintech_money::{Currency, Money};

use crate::pdf;

/// A calendar month: `2026-10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// Parses `YYYY-MM` (2000 to 9999).
    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (year, month) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
        ((2000..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    /// The month of an RFC 3339 UTC time (`2026-11-27T08:00:00Z` → 2026-11).
    pub fn of(time: &str) -> Option<Month> {
        Month::parse(time.get(..7)?)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month { year: self.year - 1, month: 12 }
        } else {
            Month { year: self.year, month: self.month - 1 }
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One line: a posting with the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub posting: Posting,
    pub balance_after_minor: i64,
}

impl Line {
    fn signed(&self) -> i64 {
        signed(&self.posting)
    }
}

fn signed(p: &Posting) -> i64 {
    if p.direction == "credit" { p.amount_minor } else { -p.amount_minor }
}

/// What a statement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub account_id: String,
    pub currency: String,
    pub month: Month,
    pub opening_minor: i64,
    pub closing_minor: i64,
    pub credits_minor: i64,
    pub debits_minor: i64,
    /// Oldest first.
    pub lines: Vec<Line>,
}

/// Postings asked of the ledger at once.
const PAGE: u32 = 200;

/// Builds `account_id`'s statement of `month` from the ledger.
pub async fn build(ledger: &dyn LedgerClient, account_id: &str, month: Month) -> Result<Built, LedgerError> {
    let account = ledger.account(account_id).await?;
    let (start, end) = (month.to_string(), month.next().to_string());
    let mut balance = account.balance_minor;
    let mut newest_first = Vec::new();
    let mut cursor = None;
    'pages: loop {
        let page = ledger.postings(account_id, cursor, PAGE).await?;
        let full = page.len() == PAGE as usize;
        for p in page {
            cursor = Some(p.seq);
            if p.created_at.as_str() >= end.as_str() {
                balance -= signed(&p);
            } else if p.created_at.as_str() >= start.as_str() {
                let after = balance;
                balance -= signed(&p);
                newest_first.push(Line { balance_after_minor: after, posting: p });
            } else {
                break 'pages;
            }
        }
        if !full {
            break;
        }
    }
    let lines: Vec<Line> = newest_first.into_iter().rev().collect();
    let credits = lines.iter().filter(|l| l.signed() > 0).map(Line::signed).sum();
    let debits = lines.iter().filter(|l| l.signed() < 0).map(|l| -l.signed()).sum();
    let closing = lines.last().map_or(balance, |l| l.balance_after_minor);
    Ok(Built {
        account_id: account.id,
        currency: account.currency,
        month,
        opening_minor: balance,
        closing_minor: closing,
        credits_minor: credits,
        debits_minor: debits,
        lines,
    })
}

/// `1234.56` from minor units in `currency` (the raw integer if the currency is unknown).
pub fn decimal(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::new(minor, c).decimal(),
        Err(_) => minor.to_string(),
    }
}

/// A CSV cell: quoted when needed, and a text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) prefixed with `'`.
fn cell(text: &str, is_text: bool) -> String {
    let text = if is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// The CSV: a header, then one row per posting, oldest first.
pub fn csv(b: &Built) -> Vec<u8> {
    let mut out = String::from("date,reference,direction,amount,balance_after,currency\r\n");
    for l in &b.lines {
        let amount = decimal(l.signed(), &b.currency);
        out.push_str(&format!(
            "{},{},{},{},{},{}\r\n",
            cell(&l.posting.created_at, true),
            cell(&l.posting.transfer_id, true),
            l.posting.direction,
            amount,
            decimal(l.balance_after_minor, &b.currency),
            cell(&b.currency, true),
        ));
    }
    out.into_bytes()
}

/// The PDF: a summary, then the postings, oldest first.
pub fn pdf(b: &Built) -> Vec<u8> {
    let title = format!("FINTECH statement {} {}", b.account_id, b.month);
    let money = |m: i64| format!("{} {}", decimal(m, &b.currency), b.currency);
    let mut lines = vec![
        title.clone(),
        String::new(),
        format!("Account:          {}", b.account_id),
        format!("Period:           {} (UTC)", b.month),
        format!("Opening balance:  {}", money(b.opening_minor)),
        format!("Money in:         {}", money(b.credits_minor)),
        format!("Money out:        {}", money(b.debits_minor)),
        format!("Closing balance:  {}", money(b.closing_minor)),
        String::new(),
        format!("{:<20} {:<44} {:>14} {:>14}", "Date", "Reference", "Amount", "Balance"),
    ];
    for l in &b.lines {
        let date: String = l.posting.created_at.chars().take(19).collect::<String>().replace('T', " ");
        let reference: String = l.posting.transfer_id.chars().take(44).collect();
        lines.push(format!(
            "{date:<20} {reference:<44} {:>14} {:>14}",
            decimal(l.signed(), &b.currency),
            decimal(l.balance_after_minor, &b.currency)
        ));
    }
    if b.lines.is_empty() {
        lines.push("No transactions in this period.".into());
    }
    pdf::document(&title, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_step() {
        assert_eq!(Month::parse("2026-10").map(|m| m.to_string()).as_deref(), Some("2026-10"));
        for bad in ["2026-13", "2026-00", "26-10", "2026-1", "2026/10", "", "1999-12"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        let dec = Month::parse("2026-12").unwrap_or(Month { year: 0, month: 0 });
        assert_eq!(dec.next().to_string(), "2027-01");
        assert_eq!(dec.next().previous(), dec);
        assert_eq!(Month::of("2026-11-27T08:00:00.000Z").map(|m| m.to_string()).as_deref(), Some("2026-11"));
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(cell("=HYPERLINK(\"x\")", true), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-12.00", false), "-12.00");
        assert_eq!(decimal(-1_250, "EUR"), "-12.50");
        assert_eq!(decimal(700, "JPY"), "700");
    }
}
