//! Whole-system tests and load tools.
