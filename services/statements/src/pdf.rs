//! A small PDF writer for statements: pages of monospaced text (PDF 1.4, the standard Courier
//! font, A4), nothing more. Hand-written because a statement needs no layout engine; the output is
//! checked by `pdftotext` (poppler) in the tests.
//!
//! Text is Latin-1 in the standard fonts' WinAnsi encoding: characters outside it are written as
//! `?`. `(`, `)` and `\` are escaped.

/// Lines per page at 10 pt on A4 with 50 pt margins.
pub const LINES_PER_PAGE: usize = 60;
const PAGE_WIDTH: u32 = 595;
const PAGE_HEIGHT: u32 = 842;
const MARGIN: u32 = 50;
const LEADING: u32 = 12;

/// A PDF string literal of `text`.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '€' => out.push_str("\\200"),
            c if (' '..='~').contains(&c) => out.push(c),
            c if u32::from(c) >= 0xA0 && u32::from(c) <= 0xFF => out.push_str(&format!("\\{:03o}", u32::from(c))),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// A PDF document of `lines`, [`LINES_PER_PAGE`] per page, each page footed with its number.
pub fn document(title: &str, lines: &[String]) -> Vec<u8> {
    let pages: Vec<&[String]> = if lines.is_empty() { vec![&[][..]] } else { lines.chunks(LINES_PER_PAGE).collect() };
    let n = pages.len();
    // Objects: 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page.
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".into());
    objects.push(format!("<< /Title {} /Producer (FINTECH statements) >>", literal(title)));
    for (i, page) in pages.iter().enumerate() {
        let mut content = format!("BT /F1 10 Tf {LEADING} TL {MARGIN} {} Td\n", PAGE_HEIGHT - MARGIN);
        for line in *page {
            content.push_str(&literal(line));
            content.push_str(" Tj T*\n");
        }
        content.push_str("ET\n");
        content.push_str(&format!(
            "BT /F1 8 Tf {MARGIN} 30 Td {} Tj ET\n",
            literal(&format!("{title} - page {} of {n}", i + 1))
        ));
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Resources << /Font << /F1 3 0 R >> >> \
             /Contents {} 0 R >>",
            6 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{content}endstream", content.len()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_latin1() {
        assert_eq!(literal("a (b) \\ c"), "(a \\(b\\) \\\\ c)");
        assert_eq!(literal("café €5 ✓"), "(caf\\351 \\2005 ?)");
    }

    #[test]
    fn the_cross_reference_table_points_at_every_object() {
        let lines: Vec<String> = (0..130).map(|i| format!("line {i}")).collect();
        let pdf = document("Statement", &lines);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4\n"));
        assert!(text.contains("/Count 3"), "130 lines make 3 pages");
        let xref = text.rfind("startxref\n").map(|i| &text[i + 10..]).and_then(|t| t.lines().next()).unwrap_or("");
        let at: usize = xref.parse().unwrap_or(0);
        assert!(text[at..].starts_with("xref\n"), "startxref points at the table");
        for (i, line) in text[at..].lines().skip(3).take(10).enumerate() {
            let offset: usize = line[..10].parse().unwrap_or(0);
            assert!(text[offset..].starts_with(&format!("{} 0 obj", i + 1)), "object {}", i + 1);
        }
    }
}
