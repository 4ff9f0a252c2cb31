//! Metadata values between Rust and Lua, the route metadata object (`handle:metadata()`) and
//! the dynamic metadata object (`streamInfo():dynamicMetadata()`).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Lua, UserData, UserDataMethods, Value};

use crate::access::MetadataValue;
use crate::state::StreamShared;

pub(crate) fn to_lua(lua: &Lua, value: &MetadataValue) -> mlua::Result<Value> {
    Ok(match value {
        MetadataValue::Null => Value::Nil,
        MetadataValue::Bool(b) => Value::Boolean(*b),
        // Whole numbers as Lua integers, so that they print as LuaJIT (Envoy) prints them.
        MetadataValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Value::Integer(*n as i64)
        }
        MetadataValue::Number(n) => Value::Number(*n),
        MetadataValue::String(s) => Value::String(lua.create_string(s)?),
        MetadataValue::List(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        MetadataValue::Map(map) => Value::Table(map_to_table(lua, map)?),
    })
}

pub(crate) fn map_to_table(
    lua: &Lua,
    map: &BTreeMap<String, MetadataValue>,
) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(0, map.len())?;
    for (k, v) in map {
        t.raw_set(k.as_str(), to_lua(lua, v)?)?;
    }
    Ok(t)
}

/// A Lua value as a metadata value: a table with keys 1..n is a list, any other table a map
/// (non-string keys are converted with `tostring` semantics for numbers).
pub(crate) fn from_lua(value: Value, depth: usize) -> mlua::Result<MetadataValue> {
    if depth > 32 {
        return Err(mlua::Error::runtime("metadata value nested too deeply"));
    }
    Ok(match value {
        Value::Nil => MetadataValue::Null,
        Value::Boolean(b) => MetadataValue::Bool(b),
        Value::Integer(i) => MetadataValue::Number(i as f64),
        Value::Number(n) => MetadataValue::Number(n),
        Value::String(s) => MetadataValue::String(s.to_string_lossy()),
        Value::Table(t) => {
            let len = t.raw_len();
            let pairs = t
                .pairs::<Value, Value>()
                .collect::<mlua::Result<Vec<_>>>()?;
            if len > 0 && pairs.len() == len {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    items.push(from_lua(t.raw_get(i)?, depth + 1)?);
                }
                MetadataValue::List(items)
            } else {
                let mut map = BTreeMap::new();
                for (k, v) in pairs {
                    let key = match k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(mlua::Error::runtime(format!(
                                "metadata keys must be strings, got {}",
                                other.type_name()
                            )));
                        }
                    };
                    map.insert(key, from_lua(v, depth + 1)?);
                }
                MetadataValue::Map(map)
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "unsupported metadata value type {}",
                other.type_name()
            )));
        }
    })
}

/// `pairs()` over `(string, value)` entries.
fn value_pairs(
    lua: &Lua,
    entries: Vec<(String, Value)>,
) -> mlua::Result<(mlua::Function, Value, Value)> {
    let mut iter = entries.into_iter();
    let next = lua.create_function_mut(move |lua, _: mlua::MultiValue| match iter.next() {
        Some((k, v)) => Ok((Value::String(lua.create_string(k)?), v)),
        None => Ok((Value::Nil, Value::Nil)),
    })?;
    Ok((next, Value::Nil, Value::Nil))
}

/// Route metadata for this filter (`handle:metadata()`), read-only.
pub(crate) struct MetadataObject {
    pub map: Arc<BTreeMap<String, MetadataValue>>,
}

impl UserData for MetadataObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, this, key: String| match this.map.get(&key) {
            Some(v) => to_lua(lua, v),
            None => Ok(Value::Nil),
        });
        methods.add_meta_method("__pairs", |lua, this, ()| {
            let entries = this
                .map
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_lua(lua, v)?)))
                .collect::<mlua::Result<Vec<_>>>()?;
            value_pairs(lua, entries)
        });
    }
}

/// The stream's dynamic metadata: `get(filter)` → table or nil, `set(filter, key, value)`,
/// `pairs()` over filters.
pub(crate) struct DynamicMetadataObject {
    pub shared: Rc<StreamShared>,
}

impl UserData for DynamicMetadataObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, this, filter: String| {
            let fields = this.shared.with_access(|a| {
                let mut out = None;
                a.dynamic_metadata(&mut |m| out = m.get(&filter).cloned());
                out
            })?;
            // An unknown filter is no value at all (as Envoy), not one nil.
            let mut out = mlua::Variadic::new();
            if let Some(fields) = fields {
                out.push(Value::Table(map_to_table(lua, &fields)?));
            }
            Ok(out)
        });
        methods.add_method(
            "set",
            |_, this, (filter, key, value): (String, String, Value)| {
                let value = from_lua(value, 0)?;
                this.shared.with_access(|a| {
                    let mut value = Some(value);
                    a.dynamic_metadata(&mut |m| {
                        if let Some(v) = value.take() {
                            m.entry(filter.clone()).or_default().insert(key.clone(), v);
                        }
                    });
                })
            },
        );
        methods.add_meta_method("__pairs", |lua, this, ()| {
            let all = this.shared.with_access(|a| {
                let mut out = Default::default();
                a.dynamic_metadata(&mut |m| out = m.clone());
                out
            })?;
            let entries = all
                .iter()
                .map(|(k, v)| Ok((k.clone(), Value::Table(map_to_table(lua, v)?))))
                .collect::<mlua::Result<Vec<_>>>()?;
            value_pairs(lua, entries)
        });
    }
}
