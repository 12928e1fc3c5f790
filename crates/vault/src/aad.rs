//! Associated data: where a ciphertext lives.

/// The location a secret is stored at: table, row and column.
///
/// Every envelope is authenticated together with its location, so an
/// envelope copied to another row (or column, or table) fails to decrypt
/// with [`VaultError::Decrypt`](crate::VaultError::Decrypt). Use a row's
/// stable primary key for `row`, never something that changes on update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aad<'a> {
    /// Table name, e.g. `provider_accounts`.
    pub table: &'a str,
    /// The row's primary key, as text.
    pub row: &'a str,
    /// Column name, e.g. `access_token`.
    pub column: &'a str,
}

impl<'a> Aad<'a> {
    /// The location `table`, `row`, `column`.
    #[must_use]
    pub const fn new(table: &'a str, row: &'a str, column: &'a str) -> Self {
        Self { table, row, column }
    }

    /// The canonical encoding: each field as an 8-byte big-endian length
    /// followed by its bytes, in the order table, row, column. Distinct
    /// locations always encode differently (`("a:b", "c")` vs `("a", "b:c")`).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(3 * 8 + self.table.len() + self.row.len() + self.column.len());
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for field in [self.table, self.row, self.column] {
            push_field(out, field.as_bytes());
        }
    }
}

impl std::fmt::Display for Aad<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}].{}", self.table, self.row, self.column)
    }
}

/// Appends `bytes` with its length as a `u64` big-endian prefix.
pub(crate) fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}
