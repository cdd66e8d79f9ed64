//! `assent emit`.
