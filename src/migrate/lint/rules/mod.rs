//! The lint rules, one per file. Each file holds the rule's name, risk, advice, a bad and
//! a good example (run as tests), and its check; `docs/lint-rules.md` documents them all.

mod alter_column_type;
mod check_without_not_valid;
mod constraint_without_not_valid;
mod drop_column;
mod drop_constraint;
mod drop_database;
mod drop_default;
mod drop_function;
mod drop_index_without_concurrently;
mod drop_not_null;
mod drop_schema;
mod drop_sequence;
mod drop_table;
mod drop_trigger;
mod drop_type;
mod drop_view;
mod foreign_key_locks_referenced_table;
mod foreign_key_without_not_valid;
mod identifier_too_long;
mod index_without_concurrently;
mod missing_lock_timeout;
mod not_null_column_without_default;
mod rename_column;
mod rename_constraint;
mod rename_enum_value;
mod rename_index;
mod rename_schema;
mod rename_sequence;
mod rename_table;
mod rename_type;
mod set_not_null;
mod transaction_control;
mod truncate;
mod unique_constraint_without_index;
mod volatile_default;

use super::Rule;

pub use volatile_default::{
    is_serial as volatile_default_is_serial, volatile_call as volatile_default_call,
};

/// Every rule, in the order findings are reported within a statement.
pub const ALL: &[Rule] = &[
    drop_database::RULE,
    drop_schema::RULE,
    drop_table::RULE,
    drop_column::RULE,
    truncate::RULE,
    alter_column_type::RULE,
    rename_table::RULE,
    rename_column::RULE,
    not_null_column_without_default::RULE,
    set_not_null::RULE,
    volatile_default::RULE,
    foreign_key_without_not_valid::RULE,
    check_without_not_valid::RULE,
    unique_constraint_without_index::RULE,
    index_without_concurrently::RULE,
    drop_index_without_concurrently::RULE,
    drop_constraint::RULE,
    rename_index::RULE,
    rename_constraint::RULE,
    rename_type::RULE,
    rename_sequence::RULE,
    rename_schema::RULE,
    rename_enum_value::RULE,
    drop_type::RULE,
    drop_not_null::RULE,
    drop_default::RULE,
    drop_view::RULE,
    drop_sequence::RULE,
    drop_function::RULE,
    drop_trigger::RULE,
    identifier_too_long::RULE,
    foreign_key_locks_referenced_table::RULE,
    transaction_control::RULE,
    missing_lock_timeout::RULE,
];

/// The rule named `name`.
pub fn find(name: &str) -> Option<&'static Rule> {
    ALL.iter().find(|r| r.name == name)
}
