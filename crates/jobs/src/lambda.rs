//! The AWS Lambda entry (written later).
