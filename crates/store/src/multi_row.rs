//! The `VALUES` list of a multi-row statement, written once as a row template.

/// `rows` copies of the tuple `row`, joined by `, `, each `?n` in it (n from 1) made the bind
/// parameter `$k` that is the row's own `n`th: `before` parameters come first (the statement's
/// own, which the template names as `$1` and so on), then each row's, `width` a row, where
/// `width` is the largest `n` in the template (a `?n` may stand more than once). Columns with
/// the same value in every row go in the template as literals, which keeps a statement of many
/// rows under the parameter limits.
pub fn values(row: &str, rows: usize, before: usize) -> String {
    let parts = parse(row);
    let width = parts.iter().filter_map(|p| p.1).max().unwrap_or(0);
    let mut out = String::with_capacity((row.len() + 8) * rows);
    for i in 0..rows {
        if i > 0 {
            out.push_str(", ");
        }
        for (text, param) in &parts {
            out.push_str(text);
            if let Some(n) = param {
                out.push('$');
                out.push_str(&(before + width * i + n).to_string());
            }
        }
    }
    out
}

/// The template as (text, then the `?n` that follows it, if any).
fn parse(row: &str) -> Vec<(&str, Option<usize>)> {
    let mut parts = Vec::new();
    let mut rest = row;
    while let Some(at) = rest.find('?') {
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len() - at - 1, |d| d);
        let n = rest[at + 1..at + 1 + digits]
            .parse()
            .expect("a `?` in a row template is followed by its parameter number");
        parts.push((&rest[..at], Some(n)));
        rest = &rest[at + 1 + digits..];
    }
    parts.push((rest, None));
    parts
}

#[cfg(test)]
mod tests {
    use super::values;

    #[test]
    fn rows_number_their_own_parameters_after_the_statement_ones() {
        assert_eq!(
            values("(?1, 'x', ?2)", 2, 0),
            "($1, 'x', $2), ($3, 'x', $4)"
        );
        assert_eq!(
            values("(?1, $1, ?2, ?2)", 3, 1),
            "($2, $1, $3, $3), ($4, $1, $5, $5), ($6, $1, $7, $7)"
        );
        assert_eq!(values("(?1)", 0, 0), "");
        assert_eq!(values("(?10, ?1)", 2, 0), "($10, $1), ($20, $11)");
    }
}
