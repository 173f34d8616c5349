//! Splitting a one-line `scontrol show ... -o` record into `Key=Value` fields.
//!
//! Values are not quoted, and some hold spaces (`JobName=my run`, `OS=Linux 6.1 #1 SMP`), so a
//! field runs until the next whitespace-separated token that looks like `Key=`.

/// Whether `key` looks like a scontrol field name (`JobId`, `AllocNode:Sid`, `CPUs/Task`).
fn is_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b':'))
}

/// The `(key, value)` fields of one record, in order. Keys may repeat (a job's per-node
/// `Nodes=... GRES=...` detail appears once per node group).
pub fn fields(line: &str) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(64);
    // (key, start of value, end of value) of the field being read.
    let mut current: Option<(&str, usize, usize)> = None;
    for token in line.split_ascii_whitespace() {
        // split_ascii_whitespace yields sub-slices of `line`, so the offset is exact.
        let start = token.as_ptr() as usize - line.as_ptr() as usize;
        let end = start + token.len();
        let new_key = token.split_once('=').filter(|(k, _)| is_key(k));
        match new_key {
            Some((key, _)) => {
                if let Some((k, s, e)) = current.take() {
                    out.push((k, &line[s..e]));
                }
                let value_start = start + key.len() + 1;
                current = Some((key, value_start, end));
            }
            None => {
                if let Some((_, _, e)) = current.as_mut() {
                    *e = end;
                }
            }
        }
    }
    if let Some((k, s, e)) = current {
        out.push((k, &line[s..e.max(s)]));
    }
    out
}

/// The first value of `key`.
pub fn get<'a>(fields: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Splits `name(id)` as in `UserId=root(0)` into the name and the number.
pub fn name_and_id(value: &str) -> (&str, Option<u32>) {
    match value.strip_suffix(')').and_then(|v| v.rsplit_once('(')) {
        Some((name, id)) => (name, id.parse().ok()),
        None => (value, None),
    }
}

/// `None` for Slurm's placeholders for "no value".
pub fn non_null(value: &str) -> Option<&str> {
    match value {
        "" | "(null)" | "N/A" | "None" => None,
        v => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_spaces_run_to_the_next_key() {
        let f = fields("JobId=3 JobName=my run UserId=root(0) OS=Linux 6.1 #1 SMP  RealMemory=10 Power= ");
        assert_eq!(
            f,
            [
                ("JobId", "3"),
                ("JobName", "my run"),
                ("UserId", "root(0)"),
                ("OS", "Linux 6.1 #1 SMP"),
                ("RealMemory", "10"),
                ("Power", "")
            ]
        );
    }

    #[test]
    fn keys_with_colons_and_slashes_are_keys() {
        let f = fields("AllocNode:Sid=localhost:6603 CPUs/Task=1 TRES=cpu=1,node=1");
        assert_eq!(
            f,
            [
                ("AllocNode:Sid", "localhost:6603"),
                ("CPUs/Task", "1"),
                ("TRES", "cpu=1,node=1")
            ]
        );
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let f = fields("Nodes=a CPU_IDs=0 GRES=gpu:1(IDX:0) Nodes=b GRES=gpu:2(IDX:0-1)");
        let nodes: Vec<_> = f.iter().filter(|(k, _)| *k == "Nodes").map(|(_, v)| *v).collect();
        assert_eq!(nodes, ["a", "b"]);
    }

    #[test]
    fn names_with_ids_split() {
        assert_eq!(name_and_id("nobody(65534)"), ("nobody", Some(65534)));
        assert_eq!(name_and_id("root"), ("root", None));
        assert_eq!(name_and_id("x(y)"), ("x", None));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in ["", "=", "==", " = x", "a=", "=b c=d", "é=ü ü", "\u{0}=\u{0}"] {
            let _ = fields(s);
        }
        assert_eq!(fields("text without keys"), []);
    }
}
