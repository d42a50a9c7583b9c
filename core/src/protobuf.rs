//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into
//! the JSON form the rest of the server works on.
//!
//! kubectl 1.32 and later send typed-client bodies (`create configmap|secret|deployment|token`,
//! `auth can-i`, `auth whoami`, evictions, ...) as protobuf and never retry in JSON. A body is
//! the magic `k8s\0` followed by a `runtime.Unknown`:
//! `{1: TypeMeta {1: apiVersion, 2: kind}, 2: bytes raw, 3: contentEncoding, 4: contentType}`,
//! and `raw` is the object in the Kubernetes protobuf encoding (the `generated.proto` files of
//! k8s.io/api and apimachinery).
//!
//! Decoding is generic, driven by a message table carried as data
//! (`core/data/proto-messages.json.gz`, made by `testdata/tools/gen_proto_messages.py` from the
//! k8s-pb 0.9.0 sources and the Go type metadata of kubectl 1.33). For every message the table
//! gives each field's tag, JSON name, wire type, repeated/map, and the Go shape that decides
//! how `encoding/json` prints it: pointer or not, `omitempty`, embedded `json:",inline"`
//! structs. The output is therefore the JSON kubectl would have sent for the same object:
//! zero-valued non-pointer fields with `omitempty` are left out (kubectl's protobuf carries
//! them all), explicit zeros of pointer fields (`replicas: 0`) are kept, structs are always
//! present (`"status": {}`, `"creationTimestamp": null`), map keys are sorted.
//!
//! Well-known types get Kubernetes' JSON forms: `Time` (RFC 3339, seconds), `MicroTime`
//! (6 fractional digits), `Duration` (Go duration string), `Quantity` (its string),
//! `IntOrString` (number or string), `RawExtension`/`FieldsV1`/apiextensions `JSON` (the
//! embedded JSON; a nested `k8s\0` body is decoded too), the `JSONSchemaPropsOr*` unions, and
//! named Go slices that protobuf wraps in a message (`ExtraValue`, `Verbs`). `bytes` fields
//! become base64 strings.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nesting limit for messages (and `RawExtension`s holding further protobuf bodies).
const MAX_DEPTH: usize = 100;

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

static TABLE_GZ: &[u8] = include_bytes!("../data/proto-messages.json.gz");

/// Why a protobuf body could not be decoded.
#[derive(thiserror::Error, Debug)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the k8s\\0 magic")]
    BadMagic,
    /// The body ends inside a field.
    #[error("protobuf body is truncated")]
    Truncated,
    /// No message is known for the object's apiVersion and kind.
    #[error("no protobuf message is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind {
        /// `apiVersion` from the body's TypeMeta.
        api_version: String,
        /// `kind` from the body's TypeMeta.
        kind: String,
    },
    /// The body's `runtime.Unknown` names a content encoding (compression) we do not handle.
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The bytes are not valid protobuf for the message, or hold a value JSON cannot carry.
    #[error("malformed protobuf: {0}")]
    Wire(String),
    /// The embedded message table could not be loaded (a build problem, not an input one).
    #[error("protobuf message table: {0}")]
    Table(String),
}

/// Whether a `Content-Type` header value names the Kubernetes protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

/// Decode a `k8s\0`-prefixed body into the object's JSON, with `kind` and `apiVersion` set
/// (first, as Go prints them).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
    decode_unknown(rest, 0)
}

/// Decode the protobuf encoding of one object whose apiVersion and kind are known (the `raw`
/// of a `runtime.Unknown`), without `kind`/`apiVersion` added.
pub fn decode_object(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, ProtobufError> {
    let table = table()?;
    let idx = table
        .resolve(api_version, kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    Decoder { table }.message(idx, raw, 0)
}

/// The protobuf message name (e.g. `k8s.io.api.apps.v1.Deployment`) used for an
/// apiVersion and kind, if any.
pub fn message_name(api_version: &str, kind: &str) -> Option<&'static str> {
    let table = table().ok()?;
    let idx = table.resolve(api_version, kind)?;
    Some(table.messages[idx].name.as_str())
}

fn decode_unknown(buf: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let mut type_meta: &[u8] = &[];
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    for item in Fields::new(buf) {
        let (tag, val) = item?;
        match (tag, val) {
            (1, Wire::Len(b)) => type_meta = b,
            (2, Wire::Len(b)) => raw = b,
            (3, Wire::Len(b)) => encoding = String::from_utf8_lossy(b).into_owned(),
            (4, Wire::Len(_)) => {}
            (1..=4, _) => return Err(wire_err("runtime.Unknown field has the wrong wire type")),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(encoding));
    }
    let (mut api_version, mut kind) = (String::new(), String::new());
    for item in Fields::new(type_meta) {
        match item? {
            (1, Wire::Len(b)) => api_version = String::from_utf8_lossy(b).into_owned(),
            (2, Wire::Len(b)) => kind = String::from_utf8_lossy(b).into_owned(),
            (1 | 2, _) => return Err(wire_err("runtime.TypeMeta field has the wrong wire type")),
            _ => {}
        }
    }
    let table = table()?;
    let idx = table
        .resolve(&api_version, &kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let body = Decoder { table }.message(idx, raw, depth)?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    match body {
        Value::Object(obj) => {
            for (k, v) in obj {
                if k != "kind" && k != "apiVersion" {
                    out.insert(k, v);
                }
            }
            Ok(Value::Object(out))
        }
        _ => Err(wire_err("top-level object is not a JSON object")),
    }
}

fn wire_err(msg: impl Into<String>) -> ProtobufError {
    ProtobufError::Wire(msg.into())
}

// ---------------------------------------------------------------------------------------------
// The message table.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Float,
    Double,
}

impl Scalar {
    fn parse(s: &str) -> Option<Scalar> {
        Some(match s {
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            "bool" => Scalar::Bool,
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "uint32" => Scalar::Uint32,
            "uint64" => Scalar::Uint64,
            "sint32" => Scalar::Sint32,
            "sint64" => Scalar::Sint64,
            "fixed32" => Scalar::Fixed32,
            "fixed64" => Scalar::Fixed64,
            "sfixed32" => Scalar::Sfixed32,
            "sfixed64" => Scalar::Sfixed64,
            "float" => Scalar::Float,
            "double" => Scalar::Double,
            _ => return None,
        })
    }

    /// The JSON of the Go zero value; `None` where Go has a nil slice (`[]byte`).
    fn zero(self) -> Option<Value> {
        match self {
            Scalar::String => Some(Value::String(String::new())),
            Scalar::Bytes => None,
            Scalar::Bool => Some(Value::Bool(false)),
            _ => Some(Value::Number(0.into())),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    Scalar(Scalar),
    Message(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    None,
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    RawExtension,
    FieldsV1,
    Json,
    OrArray,
    OrBool,
    OrStringArray,
    Items,
}

const F_REPEATED: u64 = 1;
const F_MAP: u64 = 2;
const F_POINTER: u64 = 4;
const F_OMITEMPTY: u64 = 8;
const F_INLINE: u64 = 16;
const F_WRAPPED: u64 = 32;

#[derive(Debug)]
struct Field {
    tag: u32,
    json: String,
    ty: Ty,
    flags: u64,
}

impl Field {
    fn has(&self, flag: u64) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Debug)]
struct Message {
    name: String,
    special: Special,
    fields: Vec<Field>,
}

impl Message {
    fn field_index(&self, tag: u32) -> Option<usize> {
        self.fields.iter().position(|f| f.tag == tag)
    }
}

struct Table {
    messages: Vec<Message>,
    by_name: HashMap<String, usize>,
    by_lower: HashMap<String, usize>,
    group_versions: HashMap<String, String>,
    kinds: HashMap<String, HashMap<String, String>>,
}

fn table() -> Result<&'static Table, ProtobufError> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(load_table)
        .as_ref()
        .map_err(|e| ProtobufError::Table(e.clone()))
}

fn load_table() -> Result<Table, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(TABLE_GZ)
        .read_to_end(&mut json)
        .map_err(|e| format!("gunzip: {e}"))?;
    let root: Value = serde_json::from_slice(&json).map_err(|e| format!("parse: {e}"))?;
    let msgs = root
        .get("messages")
        .and_then(Value::as_object)
        .ok_or("no messages")?;
    let mut by_name = HashMap::with_capacity(msgs.len());
    for (i, name) in msgs.keys().enumerate() {
        by_name.insert(name.clone(), i);
    }
    let mut messages = Vec::with_capacity(msgs.len());
    for (name, m) in msgs {
        let special = match m.get("x").and_then(Value::as_str).unwrap_or("") {
            "" => Special::None,
            "time" => Special::Time,
            "microtime" => Special::MicroTime,
            "duration" => Special::Duration,
            "quantity" => Special::Quantity,
            "intorstring" => Special::IntOrString,
            "rawextension" => Special::RawExtension,
            "fieldsv1" => Special::FieldsV1,
            "json" => Special::Json,
            "orarray" => Special::OrArray,
            "orbool" => Special::OrBool,
            "orstringarray" => Special::OrStringArray,
            "items" => Special::Items,
            other => return Err(format!("{name}: unknown special {other:?}")),
        };
        let mut fields = Vec::new();
        for f in m.get("f").and_then(Value::as_array).into_iter().flatten() {
            let bad = || format!("{name}: bad field {f}");
            let tag = f.get(0).and_then(Value::as_u64).ok_or_else(bad)?;
            let json = f.get(1).and_then(Value::as_str).ok_or_else(bad)?;
            let ty = f.get(2).and_then(Value::as_str).ok_or_else(bad)?;
            let flags = f.get(3).and_then(Value::as_u64).ok_or_else(bad)?;
            let ty = match Scalar::parse(ty) {
                Some(s) => Ty::Scalar(s),
                None => Ty::Message(
                    *by_name
                        .get(ty)
                        .ok_or_else(|| format!("{name}: unknown message {ty}"))?,
                ),
            };
            fields.push(Field {
                tag: u32::try_from(tag).map_err(|_| bad())?,
                json: json.to_string(),
                ty,
                flags,
            });
        }
        messages.push(Message {
            name: name.clone(),
            special,
            fields,
        });
    }
    let by_lower = by_name
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    let group_versions = root
        .get("groupVersions")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let kinds = root
        .get("kinds")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(gv, ks)| {
                    let inner = ks
                        .as_object()
                        .map(|ks| {
                            ks.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default();
                    (gv.clone(), inner)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Table {
        messages,
        by_name,
        by_lower,
        group_versions,
        kinds,
    })
}

impl Table {
    fn lookup(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name)
            .or_else(|| self.by_lower.get(&name.to_ascii_lowercase()))
            .copied()
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<usize> {
        if kind.is_empty() {
            return None;
        }
        if let Some(name) = self.kinds.get(api_version).and_then(|k| k.get(kind)) {
            if let Some(i) = self.lookup(name) {
                return Some(i);
            }
        }
        if let Some(pkg) = self.group_versions.get(api_version) {
            if let Some(i) = self.lookup(&format!("{pkg}.{kind}")) {
                return Some(i);
            }
        }
        // DeleteOptions, WatchEvent, Status, List, ... are registered in every group-version.
        self.lookup(&format!("{META_V1}.{kind}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Wire format.

#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// Iterator over the (tag, value) pairs of one message. Groups (wire types 3/4) are skipped.
struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut result: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(ProtobufError::Truncated)?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(wire_err("varint overflows 64 bits"));
            }
            result |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(result);
            }
        }
        Err(wire_err("varint longer than 10 bytes"))
    }

    fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn skip_group(&mut self, tag: u32) -> Result<(), ProtobufError> {
        let mut depth = 1usize;
        while depth > 0 {
            let key = self.varint()?;
            let (t, wt) = ((key >> 3) as u32, key & 7);
            match wt {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take_bytes(8)?;
                }
                2 => {
                    let n =
                        usize::try_from(self.varint()?).map_err(|_| ProtobufError::Truncated)?;
                    self.take_bytes(n)?;
                }
                3 => depth += 1,
                4 => {
                    depth -= 1;
                    if depth == 0 && t != tag {
                        return Err(wire_err("mismatched end group"));
                    }
                }
                5 => {
                    self.take_bytes(4)?;
                }
                _ => return Err(wire_err(format!("invalid wire type {wt}"))),
            }
        }
        Ok(())
    }

    fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtobufError> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let key = self.varint()?;
            let tag = u32::try_from(key >> 3).map_err(|_| wire_err("field number too large"))?;
            if tag == 0 {
                return Err(wire_err("field number 0"));
            }
            let val = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    let b = self.take_bytes(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Wire::Fixed64(u64::from_le_bytes(a))
                }
                2 => {
                    let n =
                        usize::try_from(self.varint()?).map_err(|_| ProtobufError::Truncated)?;
                    Wire::Len(self.take_bytes(n)?)
                }
                3 => {
                    self.skip_group(tag)?;
                    continue;
                }
                5 => {
                    let b = self.take_bytes(4)?;
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    Wire::Fixed32(u32::from_le_bytes(a))
                }
                wt => return Err(wire_err(format!("invalid wire type {wt} for field {tag}"))),
            };
            return Ok(Some((tag, val)));
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_field() {
            Ok(Some(v)) => Some(Ok(v)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding to JSON.

struct Decoder {
    table: &'static Table,
}

/// A scalar or a message's JSON, or Go's nil (`None`).
type Opt = Option<Value>;

impl Decoder {
    fn message(&self, idx: usize, buf: &[u8], depth: usize) -> Result<Value, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(wire_err("messages nested too deeply"));
        }
        let msg = &self.table.messages[idx];
        match msg.special {
            Special::None | Special::Items => {}
            special => return self.special(msg, special, buf, depth),
        }
        let mut occurrences: Vec<Vec<Wire<'_>>> = vec![Vec::new(); msg.fields.len()];
        for item in Fields::new(buf) {
            let (tag, val) = item?;
            if let Some(i) = msg.field_index(tag) {
                occurrences[i].push(val);
            }
        }
        let mut obj = Map::new();
        for (field, occ) in msg.fields.iter().zip(&occurrences) {
            self.field(msg, field, occ, &mut obj, depth)?;
        }
        if msg.special == Special::Items {
            let items = msg
                .fields
                .first()
                .and_then(|f| obj.remove(&f.json))
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| Value::Array(Vec::new()));
            return Ok(items);
        }
        Ok(Value::Object(obj))
    }

    fn field(
        &self,
        msg: &Message,
        f: &Field,
        occ: &[Wire<'_>],
        obj: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        let omitempty = f.has(F_OMITEMPTY);
        let put = |obj: &mut Map<String, Value>, v: Opt| match v {
            None if omitempty => {}
            None => {
                obj.insert(f.json.clone(), Value::Null);
            }
            Some(v) => {
                obj.insert(f.json.clone(), v);
            }
        };
        let ctx = |e: ProtobufError| match e {
            ProtobufError::Wire(m) => ProtobufError::Wire(format!("{}.{}: {m}", msg.name, f.json)),
            other => other,
        };

        if f.has(F_MAP) {
            if occ.is_empty() {
                put(obj, None);
                return Ok(());
            }
            let mut entries = BTreeMap::new();
            for w in occ {
                let Wire::Len(entry) = *w else {
                    return Err(ctx(wire_err("map entry is not length-delimited")));
                };
                let (k, v) = self.map_entry(f, entry, depth).map_err(ctx)?;
                entries.insert(k, v);
            }
            put(obj, Some(Value::Object(entries.into_iter().collect())));
            return Ok(());
        }

        if f.has(F_REPEATED) {
            let mut items = Vec::new();
            for w in occ {
                match f.ty {
                    Ty::Message(m) => {
                        let Wire::Len(b) = *w else {
                            return Err(ctx(wire_err("message is not length-delimited")));
                        };
                        items.push(self.message(m, b, depth + 1)?);
                    }
                    Ty::Scalar(s) => match (*w, s) {
                        (Wire::Len(b), Scalar::String | Scalar::Bytes) => {
                            items.push(scalar(s, Wire::Len(b)).map_err(ctx)?)
                        }
                        (Wire::Len(b), _) => {
                            // Packed.
                            let mut p = Packed { buf: b, scalar: s };
                            while let Some(w) = p.next_wire().map_err(ctx)? {
                                items.push(scalar(s, w).map_err(ctx)?);
                            }
                        }
                        (w, _) => items.push(scalar(s, w).map_err(ctx)?),
                    },
                }
            }
            put(obj, (!items.is_empty()).then_some(Value::Array(items)));
            return Ok(());
        }

        match f.ty {
            Ty::Scalar(s) => {
                let v = match occ.last() {
                    Some(w) => Some(scalar(s, *w).map_err(ctx)?),
                    None if f.has(F_POINTER) => None,
                    None => s.zero(),
                };
                if omitempty && !f.has(F_POINTER) && v.as_ref().is_some_and(is_zero) {
                    return Ok(());
                }
                put(obj, v);
            }
            Ty::Message(m) => {
                let bytes = concat(occ).map_err(ctx)?;
                if f.has(F_INLINE) {
                    let v = self.message(m, bytes.as_deref().unwrap_or(&[]), depth + 1)?;
                    if let Value::Object(inner) = v {
                        for (k, v) in inner {
                            obj.insert(k, v);
                        }
                    }
                    return Ok(());
                }
                if f.has(F_WRAPPED) {
                    // A Go named slice: nil when absent.
                    let v = match bytes {
                        Some(b) => Some(self.message(m, &b, depth + 1)?),
                        None => None,
                    };
                    if omitempty && v.as_ref().is_some_and(is_zero) {
                        return Ok(());
                    }
                    put(obj, v);
                    return Ok(());
                }
                let v = match bytes {
                    Some(b) => Some(self.message(m, &b, depth + 1)?),
                    None if f.has(F_POINTER) => None,
                    None => Some(self.message(m, &[], depth + 1)?),
                };
                put(obj, v);
            }
        }
        Ok(())
    }

    fn map_entry(
        &self,
        f: &Field,
        entry: &[u8],
        depth: usize,
    ) -> Result<(String, Value), ProtobufError> {
        let mut key = String::new();
        let mut val: Option<Wire<'_>> = None;
        let mut msg_bytes: Option<Vec<u8>> = None;
        for item in Fields::new(entry) {
            match item? {
                (1, Wire::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
                (1, _) => return Err(wire_err("map key is not a string")),
                (2, w) => match f.ty {
                    Ty::Message(_) => {
                        let Wire::Len(b) = w else {
                            return Err(wire_err("map value is not length-delimited"));
                        };
                        msg_bytes.get_or_insert_with(Vec::new).extend_from_slice(b);
                    }
                    Ty::Scalar(_) => val = Some(w),
                },
                _ => {}
            }
        }
        let v = match f.ty {
            Ty::Message(m) => self.message(m, msg_bytes.as_deref().unwrap_or(&[]), depth + 1)?,
            Ty::Scalar(s) => match val {
                Some(w) => scalar(s, w)?,
                // Go fills a missing map value with the zero value (`[]byte{}` for bytes).
                None => s.zero().unwrap_or_else(|| Value::String(String::new())),
            },
        };
        Ok((key, v))
    }

    fn special(
        &self,
        msg: &Message,
        special: Special,
        buf: &[u8],
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        let mut ints: [Option<i64>; 4] = [None; 4];
        let mut bytes: [Option<&[u8]>; 4] = [None; 4];
        let mut strings: Vec<&[u8]> = Vec::new();
        let mut schema: Option<Vec<u8>> = None;
        let mut schemas: Vec<&[u8]> = Vec::new();
        for item in Fields::new(buf) {
            let (tag, w) = item?;
            let slot = tag as usize;
            match (special, tag, w) {
                (Special::OrArray, 1, Wire::Len(b))
                | (Special::OrBool, 2, Wire::Len(b))
                | (Special::OrStringArray, 1, Wire::Len(b)) => {
                    schema.get_or_insert_with(Vec::new).extend_from_slice(b)
                }
                (Special::OrArray, 2, Wire::Len(b)) => schemas.push(b),
                (Special::OrStringArray, 2, Wire::Len(b)) => strings.push(b),
                (_, 1..=3, Wire::Varint(v)) => ints[slot] = Some(v as i64),
                (_, 1..=3, Wire::Len(b)) => bytes[slot] = Some(b),
                _ => {}
            }
        }
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or(&[])).into_owned();
        let schema_msg = |tag: u32| -> Result<usize, ProtobufError> {
            match msg.field_index(tag).map(|i| msg.fields[i].ty) {
                Some(Ty::Message(m)) => Ok(m),
                _ => Err(ProtobufError::Table(format!(
                    "{}: no schema field",
                    msg.name
                ))),
            }
        };
        Ok(match special {
            Special::Time | Special::MicroTime => {
                if buf.is_empty() {
                    return Ok(Value::Null);
                }
                let secs = ints[1].unwrap_or(0);
                let nanos = if special == Special::Time {
                    0 // metav1.Time keeps whole seconds only
                } else {
                    ints[2].unwrap_or(0) as i32
                };
                format_time(secs, nanos, special == Special::MicroTime)
                    .map(Value::String)
                    .unwrap_or(Value::Null)
            }
            Special::Duration => Value::String(go_duration(ints[1].unwrap_or(0))),
            Special::Quantity => {
                let s = text(bytes[1]);
                Value::String(if s.is_empty() { "0".to_string() } else { s })
            }
            Special::IntOrString => {
                if ints[1].unwrap_or(0) == 1 {
                    Value::String(text(bytes[3]))
                } else {
                    Value::Number((ints[2].unwrap_or(0) as i32).into())
                }
            }
            Special::RawExtension | Special::FieldsV1 | Special::Json => match bytes[1] {
                None | Some([]) => Value::Null,
                Some(raw) => match raw.strip_prefix(MAGIC) {
                    Some(inner) => decode_unknown(inner, depth + 1)?,
                    None => serde_json::from_slice(raw)
                        .map_err(|e| wire_err(format!("{}: embedded JSON: {e}", msg.name)))?,
                },
            },
            Special::OrArray => {
                if !schemas.is_empty() {
                    let m = schema_msg(2)?;
                    let items = schemas
                        .iter()
                        .map(|b| self.message(m, b, depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    Value::Array(items)
                } else if let Some(b) = schema {
                    self.message(schema_msg(1)?, &b, depth + 1)?
                } else {
                    Value::Null
                }
            }
            Special::OrBool => {
                if let Some(b) = schema {
                    self.message(schema_msg(2)?, &b, depth + 1)?
                } else {
                    Value::Bool(ints[1].unwrap_or(0) != 0)
                }
            }
            Special::OrStringArray => {
                if !strings.is_empty() {
                    Value::Array(
                        strings
                            .iter()
                            .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                            .collect(),
                    )
                } else if let Some(b) = schema {
                    self.message(schema_msg(1)?, &b, depth + 1)?
                } else {
                    Value::Null
                }
            }
            Special::None | Special::Items => Value::Null,
        })
    }
}

/// Concatenate the occurrences of a message field (protobuf merges repeated occurrences).
fn concat(occ: &[Wire<'_>]) -> Result<Option<Vec<u8>>, ProtobufError> {
    let mut out: Option<Vec<u8>> = None;
    for w in occ {
        let Wire::Len(b) = *w else {
            return Err(wire_err("message is not length-delimited"));
        };
        out.get_or_insert_with(Vec::new).extend_from_slice(b);
    }
    Ok(out)
}

/// Elements of a packed repeated scalar.
struct Packed<'a> {
    buf: &'a [u8],
    scalar: Scalar,
}

impl<'a> Packed<'a> {
    fn next_wire(&mut self) -> Result<Option<Wire<'a>>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut f = Fields::new(self.buf);
        let w = match self.scalar {
            Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => {
                let b = f.take_bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Wire::Fixed64(u64::from_le_bytes(a))
            }
            Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => {
                let b = f.take_bytes(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Wire::Fixed32(u32::from_le_bytes(a))
            }
            _ => Wire::Varint(f.varint()?),
        };
        self.buf = f.buf;
        Ok(Some(w))
    }
}

fn scalar(s: Scalar, w: Wire<'_>) -> Result<Value, ProtobufError> {
    let mismatch = || wire_err(format!("{s:?} field has the wrong wire type"));
    Ok(match (s, w) {
        (Scalar::String, Wire::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Scalar::Bytes, Wire::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Scalar::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, Wire::Varint(v)) => Value::Number((v as i32).into()),
        (Scalar::Int64, Wire::Varint(v)) => Value::Number((v as i64).into()),
        (Scalar::Uint32, Wire::Varint(v)) => Value::Number((v as u32).into()),
        (Scalar::Uint64, Wire::Varint(v)) => Value::Number(v.into()),
        (Scalar::Sint32, Wire::Varint(v)) => {
            let v = v as u32;
            Value::Number((((v >> 1) as i32) ^ -((v & 1) as i32)).into())
        }
        (Scalar::Sint64, Wire::Varint(v)) => {
            Value::Number((((v >> 1) as i64) ^ -((v & 1) as i64)).into())
        }
        (Scalar::Fixed32, Wire::Fixed32(v)) => Value::Number(v.into()),
        (Scalar::Sfixed32, Wire::Fixed32(v)) => Value::Number((v as i32).into()),
        (Scalar::Fixed64, Wire::Fixed64(v)) => Value::Number(v.into()),
        (Scalar::Sfixed64, Wire::Fixed64(v)) => Value::Number((v as i64).into()),
        (Scalar::Float, Wire::Fixed32(v)) => float(f64::from(f32::from_bits(v)))?,
        (Scalar::Double, Wire::Fixed64(v)) => float(f64::from_bits(v))?,
        _ => return Err(mismatch()),
    })
}

/// A float as Go's encoding/json prints it: integral values without a fraction.
fn float(v: f64) -> Result<Value, ProtobufError> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Ok(Value::Number((v as i64).into()));
    }
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| wire_err(format!("unsupported float value {v}")))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Seconds since the epoch (and nanoseconds) as RFC 3339 in UTC, the way metav1.Time
/// (`2006-01-02T15:04:05Z`) or metav1.MicroTime (`2006-01-02T15:04:05.000000Z`) print.
/// `None` for Go's zero time (printed as null) and for years JSON cannot carry.
fn format_time(secs: i64, nanos: i32, micro: bool) -> Option<String> {
    const GO_ZERO_UNIX: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    if secs == GO_ZERO_UNIX && (!micro || nanos == 0) {
        return None;
    }
    let ts = jiff::Timestamp::new(secs, if micro { nanos } else { 0 }).ok()?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if dt.year() < 0 {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micro {
        out.push_str(&format!(".{:06}", dt.subsec_nanosecond() / 1000));
    }
    out.push('Z');
    Some(out)
}

/// Go's `time.Duration.String()`: "0s", "1.5s", "1h0m0s", "100ms", "1µs", "-2m3s".
fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    /// The fraction `v % 10^prec` without trailing zeros (and no point if zero); returns v / 10^prec.
    fn frac(v: u64, prec: u32) -> (String, u64) {
        let p = 10u64.pow(prec);
        let f = v % p;
        if f == 0 {
            return (String::new(), v / p);
        }
        let s = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", s.trim_end_matches('0')), v / p)
    }
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (f, whole) = frac(u, prec);
        out.push_str(&format!("{whole}{f}{unit}"));
    } else {
        let (f, whole) = frac(u, 9);
        u = whole;
        let secs = format!("{}{f}s", u % 60);
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&secs);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn len_field(tag: u32, b: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(tag) << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn varint_field(tag: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(tag) << 3, out);
        varint(v, out);
    }

    fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        len_field(1, api_version.as_bytes(), &mut tm);
        len_field(2, kind.as_bytes(), &mut tm);
        let mut out = MAGIC.to_vec();
        len_field(1, &tm, &mut out);
        len_field(2, raw, &mut out);
        len_field(3, b"", &mut out);
        len_field(4, b"", &mut out);
        out
    }

    /// Bodies kubectl 1.33 sent, and the JSON kubectl 1.31 sent for the same commands.
    const KUBECTL_BODIES: &[(&str, &str, &str)] = &[
        (
            "api_v1_namespaces_default_configmaps",
            concat!(
                "6b3873000a0f0a0276311209436f6e6669674d6170122a0a180a017812001a0764656661756c7422002a0032",
                "003800420012060a016112016212060a01631201641a002200",
            ),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"default","creationTimestamp":null},"data":{"a":"b","c":"d"}}"#,
        ),
        (
            "api_v1_namespaces_default_secrets",
            concat!(
                "6b3873000a0c0a027631120653656372657412310a180a017312001a0764656661756c7422002a0032003800",
                "4200120d0a027077120768756e746572321a064f70617175651a002200",
            ),
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","namespace":"default","creationTimestamp":null},"data":{"pw":"aHVudGVyMg=="},"type":"Opaque"}"#,
        ),
        (
            "api_v1_namespaces",
            concat!(
                "6b3873000a0f0a02763112094e616d657370616365121b0a130a036e733112001a0022002a00320038004200",
                "12001a020a001a002200",
            ),
            r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"ns1","creationTimestamp":null},"spec":{},"status":{}}"#,
        ),
        (
            "apis_apps_v1_namespaces_default_deployments",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bf010a260a0377656212001a07646566",
                "61756c7422002a003200380042005a0a0a0361707012037765621286010800120c0a0a0a0361707012037765",
                "621a6c0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562124c122e0a056e67696e78",
                "12056e67696e782a00320a0a001000185022002a0042006a007200800100880100900100a201001a00320042",
                "004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038",
                "001a002200",
            ),
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"default","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
        ),
        (
            "api_v1_namespaces_default_services",
            concat!(
                "6b3873000a0d0a02763112075365727669636512770a280a047376633212001a0764656661756c7422002a00",
                "3200380042005a0b0a0361707012047376633212470a200a09353637382d38303830120354435018ae2c2207",
                "080010903f1a0028b1ea01120b0a036170701204737663321a0022084e6f6465506f72743a00420052005a00",
                "600068001a020a001a002200",
            ),
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc2","namespace":"default","creationTimestamp":null,"labels":{"app":"svc2"}},"spec":{"ports":[{"name":"5678-8080","protocol":"TCP","port":5678,"targetPort":8080,"nodePort":30001}],"selector":{"app":"svc2"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "apis_batch_v1_namespaces_default_cronjobs",
            concat!(
                "6b3873000a130a0862617463682f7631120743726f6e4a6f6212ab010a190a02636a12001a0764656661756c",
                "7422002a00320038004200128b010a0b2a2f31202a202a202a202a1a002a7a0a120a02636a12001a0022002a",
                "00320038004200126432620a100a0012001a0022002a00320038004200124e12270a02636a12076275737962",
                "6f781a04646174652a0042006a007200800100880100900100a201001a094f6e4661696c757265320042004a",
                "0052005800600068008201008a01009a0100c201001a001a002200",
            ),
            r#"{"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"cj","namespace":"default","creationTimestamp":null},"spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"cj","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"cj","image":"busybox","command":["date"],"resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}"#,
        ),
        (
            "api_v1_namespaces_default_resourcequotas",
            concat!(
                "6b3873000a130a027631120d5265736f7572636551756f746112480a190a02713112001a0764656661756c74",
                "22002a0032003800420012290a0a0a0363707512030a01310a0e0a066d656d6f727912040a0231470a0b0a04",
                "706f647312030a01301a001a002200",
            ),
            r#"{"kind":"ResourceQuota","apiVersion":"v1","metadata":{"name":"q1","namespace":"default","creationTimestamp":null},"spec":{"hard":{"cpu":"1","memory":"1G","pods":"0"}},"status":{}}"#,
        ),
        (
            "apis_policy_v1_namespaces_default_poddisruptionbudgets",
            concat!(
                "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e42756467657412410a1b0a04",
                "7064623112001a0764656661756c7422002a0032003800420012160a06080010001a00120c0a0a0a03617070",
                "12037765621a0a080018002000280030001a002200",
            ),
            r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb1","namespace":"default","creationTimestamp":null},"spec":{"minAvailable":0,"selector":{"matchLabels":{"app":"web"}}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
        ),
        (
            "apis_networking.k8s.io_v1_namespaces_default_ingresses",
            concat!(
                "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312510a1b0a0469",
                "6e673112001a0764656661756c7422002a00320038004200122e1a2c0a07666f6f2e636f6d12210a1f0a1d0a",
                "042f626172120e220c0a047376633112040a0010501a0545786163741a020a001a002200",
            ),
            r#"{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing1","namespace":"default","creationTimestamp":null},"spec":{"rules":[{"host":"foo.com","http":{"paths":[{"path":"/bar","pathType":"Exact","backend":{"service":{"name":"svc1","port":{"number":80}}}}]}}]},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "apis_scheduling.k8s.io_v1_priorityclasses",
            concat!(
                "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c61737312",
                "340a130a0370633112001a0022002a003200380042001000180022036c6f772a14507265656d70744c6f7765",
                "725072696f726974791a002200",
            ),
            r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc1","creationTimestamp":null},"value":0,"description":"low","preemptionPolicy":"PreemptLowerPriority"}"#,
        ),
        (
            "api_v1_namespaces_default_serviceaccounts_sa1_token",
            concat!(
                "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565",
                "737412210a100a0012001a0022002a0032003800420012070a02613120d8041a040a0012001a002200",
            ),
            r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"audiences":["a1"],"expirationSeconds":600,"boundObjectRef":null},"status":{"token":"","expirationTimestamp":null}}"#,
        ),
        (
            "apis_authorization.k8s.io_v1_selfsubjectaccessreviews",
            concat!(
                "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374",
                "416363657373526576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a0764656661756c",
                "7412036765741a0022002a04706f647332003a001a08080012001a0020001a002200",
            ),
            r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"resourceAttributes":{"namespace":"default","verb":"get","resource":"pods"}},"status":{"allowed":false}}"#,
        ),
        (
            "apis_authorization.k8s.io_v1_selfsubjectrulesreviews",
            concat!(
                "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a656374",
                "52756c657352657669657712230a100a0012001a0022002a0032003800420012090a0764656661756c741a04",
                "180022001a002200",
            ),
            r#"{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"namespace":"default"},"status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}}"#,
        ),
        (
            "apis_authentication.k8s.io_v1_selfsubjectreviews",
            concat!(
                "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a6563",
                "74526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200",
            ),
            r#"{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"status":{"userInfo":{}}}"#,
        ),
        (
            "apis_rbac.authorization.k8s.io_v1_namespaces_default_rolebindings",
            concat!(
                "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c654269",
                "6e64696e67126d0a1a0a0372623112001a0764656661756c7422002a0032003800420012280a045573657212",
                "19726261632e617574686f72697a6174696f6e2e6b38732e696f1a03626f6222001a250a19726261632e6175",
                "74686f72697a6174696f6e2e6b38732e696f1204526f6c651a0272311a002200",
            ),
            r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb1","namespace":"default","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"bob"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r1"}}"#,
        ),
        (
            "certificatesigningrequests_approval",
            concat!(
                "6b3873000a330a166365727469666963617465732e6b38732e696f2f76311219436572746966696361746553",
                "69676e696e675265717565737412db030aa5010a046373723112001a0022002a043162326332023432380142",
                "0808bf949abe0610005a060a016112016262060a01781201798a01700a076b75626563746c12065570646174",
                "651a166365727469666963617465732e6b38732e696f2f7631220808bf949abe06100032084669656c647356",
                "313a2f0a2d7b22663a73706563223a207b22663a72657175657374223a207b7d2c2022663a75736167657322",
                "3a207b7d7d7d4200129d010a242d2d2d2d2d424547494e20434552544946494341544520524551554553542d",
                "2d2d2d2d0a1203626f621a03752d31220464657673221473797374656d3a61757468656e746963617465642a",
                "0b636c69656e74206175746832090a05656d707479120032100a0673636f70657312060a01610a01623a236b",
                "756265726e657465732e696f2f6b7562652d6170697365727665722d636c69656e7440001a90010a290a0750",
                "656e64696e671201721a016d220808c0949abe0610002a0808c1949abe0610003204547275650a630a084170",
                "70726f766564120e4b75626563746c417070726f76651a3554686973204353522077617320617070726f7665",
                "64206279206b75626563746c20636572746966696361746520617070726f76652e220808f6c49bd80610002a",
                "003204547275651a002200",
            ),
            r#"{"kind":"CertificateSigningRequest","apiVersion":"certificates.k8s.io/v1","metadata":{"name":"csr1","uid":"1b2c","resourceVersion":"42","generation":1,"creationTimestamp":"2025-03-04T05:06:07Z","labels":{"a":"b"},"annotations":{"x":"y"},"managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"certificates.k8s.io/v1","time":"2025-03-04T05:06:07Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:request":{},"f:usages":{}}}}]},"spec":{"request":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K","signerName":"kubernetes.io/kube-apiserver-client","expirationSeconds":0,"usages":["client auth"],"username":"bob","uid":"u-1","groups":["devs","system:authenticated"],"extra":{"empty":[],"scopes":["a","b"]}},"status":{"conditions":[{"type":"Pending","status":"True","reason":"r","message":"m","lastUpdateTime":"2025-03-04T05:06:08Z","lastTransitionTime":"2025-03-04T05:06:09Z"},{"type":"Approved","status":"True","reason":"KubectlApprove","message":"This CSR was approved by kubectl certificate approve.","lastUpdateTime":"2026-11-25T13:28:22Z","lastTransitionTime":null}]}}"#,
        ),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn real_kubectl_bodies() {
        for (name, hex, want) in KUBECTL_BODIES {
            let got = decode(&unhex(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(serde_json::to_string(&got).expect("json"), *want, "{name}");
        }
    }

    #[test]
    fn table_loads() {
        let t = table().expect("table");
        assert!(t.messages.len() > 1000);
        assert_eq!(
            message_name("apps/v1", "Deployment"),
            Some("k8s.io.api.apps.v1.Deployment")
        );
        assert_eq!(
            message_name("policy/v1", "DeleteOptions"),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(message_name("example.com/v1", "Widget"), None);
    }

    #[test]
    fn configmap_gogo_style() {
        // ObjectMeta as gogo writes it: every non-pointer scalar, empty creationTimestamp.
        let mut meta = Vec::new();
        len_field(1, b"x", &mut meta);
        for tag in 2..=6 {
            len_field(tag, b"", &mut meta);
        }
        varint_field(7, 0, &mut meta);
        len_field(8, b"", &mut meta);
        let mut cm = Vec::new();
        len_field(1, &meta, &mut cm);
        let mut entry = Vec::new();
        len_field(1, b"b", &mut entry);
        len_field(2, b"2", &mut entry);
        len_field(2, &entry, &mut cm);
        let mut entry = Vec::new();
        len_field(1, b"a", &mut entry);
        len_field(2, b"1", &mut entry);
        len_field(2, &entry, &mut cm);
        let v = decode(&body("v1", "ConfigMap", &cm)).expect("decode");
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","creationTimestamp":null},"data":{"a":"1","b":"2"}}"#
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(decode(b"{}"), Err(ProtobufError::BadMagic)));
        assert!(matches!(
            decode(&body("example.com/v1", "Widget", b"")),
            Err(ProtobufError::UnknownKind { .. })
        ));
        let mut truncated = body("v1", "ConfigMap", b"\x0a\x05ab");
        truncated.truncate(truncated.len() - 4);
        assert!(decode(&truncated).is_err());
        let bad = body("v1", "ConfigMap", b"\x0a\x05ab");
        assert!(matches!(decode(&bad), Err(ProtobufError::Truncated)));
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(-123), "-123ns");
        assert_eq!(
            format_time(1_795_608_000, 0, false).as_deref(),
            Some("2026-11-25T12:00:00Z")
        );
        assert_eq!(
            format_time(0, 1_234_567, true).as_deref(),
            Some("1970-01-01T00:00:00.001234Z")
        );
        assert_eq!(format_time(-62_135_596_800, 0, false), None);
        assert_eq!(json!(null), Value::Null);
    }
}
