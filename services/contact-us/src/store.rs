//! The service's own tables. SQL here is portable between SQLite and MySQL.

use fintech_db::Db;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};
use serde::Serialize;

/// A stored contact request, as support staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactRequest {
    pub id: String,
    pub name: String,
    pub email: String,
    pub subject: String,
    pub message: String,
    /// `open` for now; support workflow states come with the support console.
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    #[serde(skip)]
    pub object_key: String,
}

pub async fn insert_request(conn: &mut AnyConnection, r: &ContactRequest) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contact_requests (id, name, email, subject, message, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.email)
    .bind(&r.subject)
    .bind(&r.message)
    .bind(&r.status)
    .bind(&r.created_at)
    .execute(&mut *conn)
    .await?;
    if let Some(a) = &r.attachment {
        sqlx::query(
            "INSERT INTO contact_attachments (id, request_id, file_name, content_type, size_bytes, object_key, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&r.id)
        .bind(&a.file_name)
        .bind(&a.content_type)
        .bind(a.size_bytes)
        .bind(&a.object_key)
        .bind(&r.created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const SELECT: &str = "SELECT r.id, r.name, r.email, r.subject, r.message, r.status, r.created_at, \
    a.id AS a_id, a.file_name, a.content_type, a.size_bytes, a.object_key \
    FROM contact_requests r LEFT JOIN contact_attachments a ON a.request_id = r.id";

fn from_row(row: &AnyRow) -> Result<ContactRequest, sqlx::Error> {
    let attachment = match row.try_get::<Option<String>, _>("a_id")? {
        Some(id) => Some(Attachment {
            id,
            file_name: row.try_get("file_name")?,
            content_type: row.try_get("content_type")?,
            size_bytes: row.try_get("size_bytes")?,
            object_key: row.try_get("object_key")?,
        }),
        None => None,
    };
    Ok(ContactRequest {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        subject: row.try_get("subject")?,
        message: row.try_get("message")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        attachment,
    })
}

pub async fn get(db: &Db, id: &str) -> Result<Option<ContactRequest>, sqlx::Error> {
    let sql = const_format(SELECT, " WHERE r.id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Newest first; ids are UUIDv7, so id order is creation order. `before` is the cursor.
pub async fn list(db: &Db, before: Option<&str>, limit: u32) -> Result<Vec<ContactRequest>, sqlx::Error> {
    let rows = match before {
        Some(cursor) => {
            let sql = const_format(SELECT, " WHERE r.id < ? ORDER BY r.id DESC LIMIT ?");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(cursor).bind(i64::from(limit)).fetch_all(db.pool()).await?
        }
        None => {
            let sql = const_format(SELECT, " ORDER BY r.id DESC LIMIT ?");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit)).fetch_all(db.pool()).await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The statement text: a constant prefix plus a constant clause, never user input.
fn const_format(prefix: &'static str, clause: &'static str) -> String {
    format!("{prefix}{clause}")
}
