//! The outputs' JSON Schemas (`schemas/`), loaded and checked with a validator that also
//! checks formats: shared by the tests that validate real outputs.

use std::path::Path;

/// The validator of `schemas/{name}` (panics naming the file if it is no valid schema).
pub fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
}

/// Asserts that `instance` matches, listing every error and where.
pub fn check(v: &jsonschema::Validator, what: &str, instance: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:?}\n{instance}"
    );
}
