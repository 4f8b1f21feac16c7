//! Reading Redis's replies: strings, entry lists and `XREAD`'s answer, each shape checked, so
//! an unexpected reply is an error naming what was wrong rather than a panic.

use crate::cluster::entry::{Entry, EntryId};
use redis::Value;

/// One stream entry read: its id, and the entry or why it could not be read.
pub type Read = (EntryId, Result<Entry, String>);

/// A reply as text (bulk or simple strings, numbers).
pub fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::BulkString(bytes) => {
            String::from_utf8(bytes.clone()).map_err(|_| "a reply is not UTF-8".to_string())
        }
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Okay => Ok("OK".into()),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// A reply as a number.
pub fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(n) => Ok(*n),
        other => text(other)?
            .parse()
            .map_err(|_| format!("expected a number, got {other:?}")),
    }
}

/// A reply as a list (arrays and sets).
pub fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(format!("expected a list, got {other:?}")),
    }
}

/// One entry as Redis lists it: `[id, [field, value, ...]]`.
pub fn entry(value: &Value) -> Result<Read, String> {
    let [id, fields] = list(value)? else {
        return Err("an entry is not [id, fields]".into());
    };
    let id = text(id)?;
    let id = EntryId::parse(&id).ok_or_else(|| format!("bad entry id {id:?}"))?;
    let fields = list(fields)?;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(fields.len() / 2);
    for pair in fields.chunks(2) {
        match pair {
            [Value::BulkString(name), Value::BulkString(value)] => pairs.push((name, value)),
            _ => return Ok((id, Err("fields are not pairs of strings".into()))),
        }
    }
    Ok((id, Entry::decode(&pairs)))
}

/// `XREAD`'s reply: each stream key with its entries, oldest first; nothing when it timed out.
pub fn streams(value: &Value) -> Result<Vec<(String, Vec<Read>)>, String> {
    let keyed: Vec<(&Value, &Value)> = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => {
            let mut keyed = Vec::with_capacity(items.len());
            for item in items {
                let [key, entries] = list(item)? else {
                    return Err("a stream is not [key, entries]".into());
                };
                keyed.push((key, entries));
            }
            keyed
        }
        other => return Err(format!("unexpected XREAD reply {other:?}")),
    };
    keyed
        .into_iter()
        .map(|(key, entries)| {
            let entries = list(entries)?
                .iter()
                .map(entry)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((text(key)?, entries))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn join_entry(id: &str, name: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(
                ["kind", "join", "name", name, "node", "n", "member", "1"]
                    .iter()
                    .map(|s| bulk(s))
                    .collect(),
            ),
        ])
    }

    #[test]
    fn xread_replies_in_both_protocols() {
        let entries = Value::Array(vec![join_entry("5-0", "a"), join_entry("5-1", "b")]);
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("wschat:room:lobby"),
            entries.clone(),
        ])]);
        let resp3 = Value::Map(vec![(bulk("wschat:room:lobby"), entries)]);
        for reply in [resp2, resp3] {
            let read = streams(&reply).unwrap();
            assert_eq!(read.len(), 1);
            assert_eq!(read[0].0, "wschat:room:lobby");
            let ids: Vec<String> = read[0].1.iter().map(|(id, _)| id.to_string()).collect();
            assert_eq!(ids, ["5-0", "5-1"]);
            assert!(matches!(&read[0].1[1].1, Ok(Entry::Join { name, .. }) if name == "b"));
        }
        assert!(streams(&Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn odd_replies_are_errors_not_panics() {
        assert!(streams(&Value::Int(3)).is_err());
        assert!(streams(&Value::Array(vec![Value::Array(vec![bulk("k")])])).is_err());
        assert!(entry(&Value::Array(vec![bulk("x-y"), Value::Array(vec![])])).is_err());
        // Fields that are not string pairs: the entry is read as bad, with its id kept.
        let odd = Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("kind")])]);
        let (id, read) = entry(&odd).unwrap();
        assert_eq!(id.to_string(), "1-1");
        assert!(read.is_err());
    }
}
