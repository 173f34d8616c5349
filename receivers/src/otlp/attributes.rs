//! OTLP attribute values as label values, and as bytes of a cache key.
//!
//! The key form is what the hot path writes for every data point (no allocation for strings,
//! integers, floats and booleans); the label form is only made when a series is new.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Appends `bytes` with a length prefix, so that concatenated fields cannot be confused.
pub(crate) fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends an attribute value to a cache key: a type byte, then the value.
pub(crate) fn put_value(out: &mut Vec<u8>, value: Option<&AnyValue>) {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => {
            out.push(b's');
            put(out, s.as_bytes());
        }
        Some(Value::IntValue(i)) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Some(Value::DoubleValue(d)) => {
            out.push(b'd');
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(Value::BoolValue(b)) => {
            out.push(b'b');
            out.push(u8::from(*b));
        }
        Some(other) => {
            // Arrays, maps and bytes are rare as metric attributes; their text form is the key.
            out.push(b'o');
            put(out, value_text(other).as_bytes());
        }
        None => out.push(b'n'),
    }
}

/// Appends a set of attributes to a cache key, in key order so that senders that do not keep
/// a stable order still hit the same entry.
pub(crate) fn put_attributes(out: &mut Vec<u8>, attrs: &[KeyValue]) {
    let mut put_one = |kv: &KeyValue| {
        put(out, kv.key.as_bytes());
        put_value(out, kv.value.as_ref());
    };
    if attrs.is_sorted_by(|a, b| a.key <= b.key) {
        attrs.iter().for_each(&mut put_one);
    } else {
        let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted.into_iter().for_each(put_one);
    }
}

/// The value of an attribute as a label value (what the Collector's `AsString` gives).
pub(crate) fn label_value(value: Option<&AnyValue>) -> String {
    value.and_then(|v| v.value.as_ref()).map(value_text).unwrap_or_default()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => super::names::float_label(*d),
        Value::BoolValue(b) => b.to_string(),
        Value::BytesValue(b) => base64(b),
        other => to_json(other).to_string(),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::StringValue(s) => J::String(s.clone()),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::BoolValue(b) => J::Bool(*b),
        Value::BytesValue(b) => J::String(base64(b)),
        // A dictionary index, meaningful only inside profiles.
        Value::StringValueStrindex(i) => J::from(*i),
        Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, to_json))
                .collect(),
        ),
        Value::KvlistValue(l) => J::Object(
            l.values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or(J::Null, to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A string attribute, for tests and resource lookups.
pub(crate) fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn values_render_like_the_collector() {
        let s = |v: Value| label_value(Some(&AnyValue { value: Some(v) }));
        assert_eq!(s(Value::IntValue(-3)), "-3");
        assert_eq!(s(Value::DoubleValue(0.25)), "0.25");
        assert_eq!(s(Value::BoolValue(true)), "true");
        assert_eq!(s(Value::BytesValue(b"hello".to_vec())), "aGVsbG8=");
        let arr = Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::StringValue("a".into())),
                },
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
            ],
        });
        assert_eq!(s(arr), r#"["a",1]"#);
        assert_eq!(label_value(None), "");
    }

    #[test]
    fn attribute_order_does_not_change_the_key_but_values_do() {
        let a = [kv("x", Value::StringValue("1".into())), kv("y", Value::IntValue(2))];
        let b = [kv("y", Value::IntValue(2)), kv("x", Value::StringValue("1".into()))];
        let c = [kv("x", Value::IntValue(1)), kv("y", Value::IntValue(2))];
        let key = |attrs: &[KeyValue]| {
            let mut out = Vec::new();
            put_attributes(&mut out, attrs);
            out
        };
        assert_eq!(key(&a), key(&b));
        assert_ne!(
            key(&a),
            key(&c),
            "a string 1 and an integer 1 are different series keys"
        );
    }
}
