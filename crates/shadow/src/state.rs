//! The algebra of shadow state trees: merging an update into a section
//! with its metadata, the delta between desired and reported, and the
//! metadata trees that mirror state.
//!
//! Metadata mirrors state: an object maps to an object of the same keys,
//! an array to an array of the same length, any other value to
//! `{"timestamp": T}`. Merge and delta are driven by the state tree, never
//! by the shape of the metadata, so a state object that happens to look
//! like `{"timestamp": 5}` is not mistaken for a leaf.

use serde_json::{Map, Number, Value};

/// `{"timestamp": ts}`.
pub(crate) fn leaf(ts: u64) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert("timestamp".into(), Value::from(ts));
    Value::Object(m)
}

/// The metadata of `v` with every leaf (including `null`) stamped `ts`:
/// what an update's accepted reply carries, and what a value written into
/// the state gets.
pub(crate) fn metadata_of(v: &Value, ts: u64) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), metadata_of(v, ts)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| metadata_of(v, ts)).collect()),
        _ => leaf(ts),
    }
}

/// Merges `patch` into one section (`desired` or `reported`) and its
/// metadata: a `null` removes the key, an object merges recursively,
/// anything else (arrays included) replaces. Objects left empty are
/// removed, so the state never holds `{}` below the section.
pub(crate) fn merge(
    state: &mut Map<String, Value>,
    meta: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ts: u64,
) {
    for (key, new) in patch {
        match new {
            Value::Null => {
                state.remove(key);
                meta.remove(key);
            }
            Value::Object(sub_patch) => {
                let emptied = if let Some(Value::Object(sub_state)) = state.get_mut(key) {
                    // Should the stored metadata not be an object here (a
                    // document written by something else), it is rebuilt
                    // so that the merge can go on.
                    let mut sub_meta = match meta.remove(key) {
                        Some(Value::Object(m)) => m,
                        _ => rebuild_metadata(sub_state),
                    };
                    merge(sub_state, &mut sub_meta, sub_patch, ts);
                    meta.insert(key.clone(), Value::Object(sub_meta));
                    sub_state.is_empty()
                } else {
                    // Absent or of another type: the object starts afresh,
                    // without the nulls it may carry.
                    let mut sub_state = Map::new();
                    let mut sub_meta = Map::new();
                    merge(&mut sub_state, &mut sub_meta, sub_patch, ts);
                    let emptied = sub_state.is_empty();
                    state.insert(key.clone(), Value::Object(sub_state));
                    meta.insert(key.clone(), Value::Object(sub_meta));
                    emptied
                };
                if emptied {
                    state.remove(key);
                    meta.remove(key);
                }
            }
            other => {
                meta.insert(key.clone(), metadata_of(other, ts));
                state.insert(key.clone(), other.clone());
            }
        }
    }
}

/// Metadata for a state tree whose timestamps are unknown.
fn rebuild_metadata(state: &Map<String, Value>) -> Map<String, Value> {
    state
        .iter()
        .map(|(k, v)| (k.clone(), metadata_of(v, 0)))
        .collect()
}

/// The delta: every desired key that reported lacks or holds a different
/// value; where both are objects, only their differing leaves, with the
/// path to them. Arrays compare as whole values.
pub(crate) fn delta(
    desired: &Map<String, Value>,
    reported: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, want) in desired {
        match (want, reported.get(key)) {
            (_, None) => {
                out.insert(key.clone(), want.clone());
            }
            (Value::Object(want_obj), Some(Value::Object(have_obj))) => {
                let sub = delta(want_obj, have_obj);
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (_, Some(have)) => {
                if !same(want, have) {
                    out.insert(key.clone(), want.clone());
                }
            }
        }
    }
    out
}

/// The desired metadata restricted to the keys of `delta`.
pub(crate) fn delta_metadata(
    delta: &Map<String, Value>,
    desired: &Map<String, Value>,
    desired_meta: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, d) in delta {
        let Some(meta) = desired_meta.get(key) else {
            continue;
        };
        match (d, desired.get(key), meta) {
            (Value::Object(d), Some(Value::Object(want)), Value::Object(meta)) => {
                out.insert(key.clone(), Value::Object(delta_metadata(d, want, meta)));
            }
            _ => {
                out.insert(key.clone(), meta.clone());
            }
        }
    }
    out
}

/// JSON equality with numbers compared by value, so that `1` and `1.0`
/// are the same and do not make a delta.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn same_number(x: &Number, y: &Number) -> bool {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return x == y;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Levels of objects and arrays: 0 for a scalar, 1 for `{}` or `{"a": 1}`.
pub(crate) fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether some array anywhere in `v` holds a `null`, which AWS refuses.
pub(crate) fn array_holds_null(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.values().any(array_holds_null),
        Value::Array(a) => a.iter().any(|e| e.is_null() || array_holds_null(e)),
        _ => false,
    }
}

/// The length of `v` serialized compactly, without building the string.
pub(crate) fn serialized_len(v: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to an infallible sink cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_deletes_replaces_and_prunes() {
        let mut state = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"}));
        let mut meta = obj(metadata_of(&Value::Object(state.clone()), 1));
        let patch = obj(
            json!({"a": null, "b": {"c": null, "d": null}, "e": [3], "g": {"h": null}, "f": {"i": 4}}),
        );
        merge(&mut state, &mut meta, &patch, 2);
        assert_eq!(Value::Object(state), json!({"e": [3], "f": {"i": 4}}));
        assert_eq!(
            Value::Object(meta),
            json!({"e": [{"timestamp": 2}], "f": {"i": {"timestamp": 2}}})
        );
    }

    #[test]
    fn merge_keeps_untouched_metadata() {
        let mut state = obj(json!({"a": {"x": 1, "y": 2}}));
        let mut meta = obj(metadata_of(&Value::Object(state.clone()), 1));
        merge(&mut state, &mut meta, &obj(json!({"a": {"y": 5}})), 2);
        assert_eq!(
            Value::Object(meta),
            json!({"a": {"x": {"timestamp": 1}, "y": {"timestamp": 2}}})
        );
    }

    #[test]
    fn a_state_object_shaped_like_metadata_is_still_state() {
        let mut state = obj(json!({"t": {"timestamp": 5}}));
        let mut meta = obj(metadata_of(&Value::Object(state.clone()), 1));
        merge(&mut state, &mut meta, &obj(json!({"t": {"other": 1}})), 2);
        assert_eq!(
            Value::Object(meta),
            json!({"t": {"timestamp": {"timestamp": 1}, "other": {"timestamp": 2}}})
        );
    }

    #[test]
    fn delta_keeps_paths_and_compares_numbers_by_value() {
        let desired = obj(json!({"l": {"c": {"r": 255, "g": 255}}, "n": 1, "a": [1, 2], "m": "x"}));
        let reported =
            obj(json!({"l": {"c": {"r": 255, "g": 0}}, "n": 1.0, "a": [1, 2, 3], "o": 1}));
        assert_eq!(
            Value::Object(delta(&desired, &reported)),
            json!({"l": {"c": {"g": 255}}, "a": [1, 2], "m": "x"})
        );
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!({"a": [{"b": 1}]})), 3);
    }

    #[test]
    fn nulls_inside_arrays_are_found_at_any_depth() {
        assert!(array_holds_null(&json!({"a": [1, null]})));
        assert!(array_holds_null(&json!({"a": [[{"b": [null]}]]})));
        assert!(!array_holds_null(&json!({"a": null, "b": [{"c": 1}]})));
    }

    #[test]
    fn serialized_len_matches_serde() {
        let v = obj(json!({"a": [1, "é", {"b": null}]}));
        assert_eq!(serialized_len(&v), serde_json::to_vec(&v).unwrap().len());
    }
}
