//! Label and field selectors, as the Kubernetes v1.33 API server understands them.
//!
//! * [`LabelSelector`] is `k8s.io/apimachinery/pkg/labels`: the `labelSelector` query parameter
//!   (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`), parsed by the
//!   same lexer/parser rules and validated the same way (keys are qualified names, values are
//!   label values), plus the structured `metav1.LabelSelector` object that controllers read from
//!   `spec.selector`.
//! * [`FieldSelector`] is `k8s.io/apimachinery/pkg/fields` plus the per-kind field label
//!   conversion functions of the API server: a selector is parsed (`=`, `==`, `!=`, comma
//!   separated, `\` escapes `\`, `,` and `=` in values), then every field label is checked against
//!   what the resource supports, and objects are matched against the field values the registry
//!   would compute for them (an unset string field is `""`, an unset bool `"false"`, an unset
//!   count `"0"`).
//!
//! Every failure is a [`SelectorError`] whose `Display` is the message kube-apiserver puts in its
//! `400 BadRequest` status (kubectl prefixes it with `Unable to find ... that match label
//! selector ...` on its own side).

use crate::resources::Resource;
use serde_json::{Map, Value};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a selector was rejected. `Display` is the upstream message, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector requirement failed to parse or validate; wraps the cause.
    #[error("unable to parse requirement: {0}")]
    Requirement(Box<SelectorError>),
    /// The label selector lexer/parser met a token it did not expect.
    #[error("found '{found}', expected: {expected}")]
    UnexpectedToken {
        found: String,
        expected: &'static str,
    },
    /// `key in x`: the value set did not start with `(` (upstream's message has no comma here).
    #[error("found '{found}' expected: '('")]
    ExpectedOpenParen { found: String },
    /// Validation errors of one requirement (`field.ErrorList` aggregated).
    #[error("{}", aggregate(.0))]
    Invalid(Vec<InvalidValue>),
    /// `metav1.LabelSelector` with an operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    InvalidOperator(String),
    /// A `metav1.LabelSelector` object that is not shaped like one.
    #[error("{0}")]
    MalformedLabelSelector(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field selector value with a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field selector value with an unescaped `=` (Go prints the rune as its number).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedRune(char),
    /// A field label the kind's conversion function rejects (core kinds, events.k8s.io).
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
    /// A field label batch/v1 Job rejects.
    #[error("field label {} not supported for batchv1.Job", go_quote(.0))]
    JobFieldLabelNotSupported(String),
    /// A field label rejected by the default conversion (kinds without their own function).
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", go_quote(.0))]
    UnknownFieldSelector(String),
}

/// One `field.Invalid` error: `<path>: Invalid value: <value>: <detail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The field path as upstream prints it (`<nil>` when the parser has none).
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

/// The offending value of an [`InvalidValue`], printed the way Go's `field.Error` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    /// Printed with `%q`.
    Str(String),
    /// A `[]string`, printed with `%#v` (`[]string(nil)` when empty).
    List(Vec<String>),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => f.write_str(&go_quote(s)),
            BadValue::List(v) if v.is_empty() => f.write_str("[]string(nil)"),
            BadValue::List(v) => {
                let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
                write!(f, "[]string{{{}}}", items.join(", "))
            }
        }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: Invalid value: {}", self.field, self.value)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// `utilerrors.Aggregate.Error()`: one message alone, several as `[a, b]`, duplicates dropped.
fn aggregate(errs: &[InvalidValue]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Go's `%q` for a string (close enough for valid UTF-8: printable characters are kept).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Name and value validation (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MAX: usize = 63;
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MAX: usize = 63;

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, anchored.
fn is_dns1123_subdomain_shape(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => edge(f) && edge(l) && b.iter().all(|c| edge(c) || *c == b'-'),
            _ => false,
        }
    })
}

/// `validation.IsQualifiedName`: the messages for a bad label key.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > DNS1123_SUBDOMAIN_MAX {
                    errs.push(format!(
                        "prefix part {}",
                        max_len_error(DNS1123_SUBDOMAIN_MAX)
                    ));
                }
                if !is_dns1123_subdomain_shape(prefix) {
                    errs.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !(value.is_empty() || is_qualified_name_part(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn validate_label_key(key: &str, path: &str) -> Option<InvalidValue> {
    let errs = qualified_name_errors(key);
    (!errs.is_empty()).then(|| InvalidValue {
        field: path.to_string(),
        value: BadValue::Str(key.to_string()),
        detail: errs.join("; "),
    })
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A label selector operator (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key in (a,b)` / matchExpressions `In`.
    In,
    /// `key notin (a,b)` / matchExpressions `NotIn`.
    NotIn,
    /// `key=a` (also matchLabels).
    Equals,
    /// `key==a`.
    DoubleEquals,
    /// `key!=a`.
    NotEquals,
    /// `key` / matchExpressions `Exists`.
    Exists,
    /// `!key` / matchExpressions `DoesNotExist`.
    DoesNotExist,
    /// `key>1` (integer comparison).
    GreaterThan,
    /// `key<1` (integer comparison).
    LessThan,
}

/// One requirement of a label selector: key, operator, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement (`labels.NewRequirement`, with no field path).
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, SelectorError> {
        let mut errs = Vec::new();
        if let Some(e) = validate_label_key(key, "key") {
            errs.push(e);
        }
        let count_error = |detail: &str| InvalidValue {
            field: "values".to_string(),
            value: BadValue::List(values.clone()),
            detail: detail.to_string(),
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(count_error(
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(count_error(
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(
                count_error("values set must be empty for exists and does not exist"),
            ),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(count_error(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(InvalidValue {
                            field: format!("values[{i}]"),
                            value: BadValue::Str(v.clone()),
                            detail: "for 'Gt', 'Lt' operators, the value must be an integer"
                                .to_string(),
                        });
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errs.push(InvalidValue {
                    field: format!("values[{i}][{key}]"),
                    value: BadValue::Str(v.clone()),
                    detail: msgs.join("; "),
                });
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(SelectorError::Invalid(errs))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given (sorted and de-duplicated when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether the label set satisfies this requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let lookup = || labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                lookup().is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => lookup().is_none_or(|v| !self.has_value(v)),
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = lookup().map(str::parse::<i64>) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted = self.values.clone();
            sorted.sort();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, or "nothing".
///
/// * The empty string, and a `metav1.LabelSelector` object with neither `matchLabels` nor
///   `matchExpressions` (`{}`), select **everything** ([`is_empty`](Self::is_empty) is true).
/// * A `null` `metav1.LabelSelector` selects **nothing**: [`matches`](Self::matches) is always
///   false, `is_empty` is false and it prints as `""` (upstream `labels.Nothing()`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every label set.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches no label set.
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the query-string form (`labels.Parse`).
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Parser::new(s).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// An exact-match selector from a map of label → value (`labels.SelectorFromSet`, no
    /// validation), e.g. a Service's `spec.selector`. Non-string values compare as `""`.
    pub fn from_set(set: &Map<String, Value>) -> LabelSelector {
        let mut requirements: Vec<Requirement> = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.as_str().unwrap_or("").to_string()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` (`metav1.LabelSelectorAsSelector`):
    /// `{matchLabels: {k: v}, matchExpressions: [{key, operator, values}]}` with operators
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`. `null` selects nothing; `{}` (or both parts
    /// empty) selects everything. Keys and values are validated like the string form.
    pub fn from_label_selector_object(v: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "label selector must be an object, not {}",
                    json_type(other)
                )))
            }
        };
        let empty = Map::new();
        let match_labels = match obj.get("matchLabels") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "matchLabels must be an object, not {}",
                    json_type(other)
                )))
            }
        };
        let no_exprs = Vec::new();
        let match_expressions = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &no_exprs,
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "matchExpressions must be an array, not {}",
                    json_type(other)
                )))
            }
        };
        if match_labels.is_empty() && match_expressions.is_empty() {
            return Ok(LabelSelector::everything());
        }
        let mut requirements = Vec::with_capacity(match_labels.len() + match_expressions.len());
        let mut keys: Vec<&String> = match_labels.keys().collect();
        keys.sort();
        for k in keys {
            let value = match match_labels.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(SelectorError::MalformedLabelSelector(format!(
                        "matchLabels[{k}] must be a string, not {}",
                        json_type(other)
                    )))
                }
                None => continue,
            };
            requirements.push(Requirement::new(k, Operator::Equals, vec![value])?);
        }
        for (i, expr) in match_expressions.iter().enumerate() {
            let Value::Object(expr) = expr else {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "matchExpressions[{i}] must be an object, not {}",
                    json_type(expr)
                )));
            };
            let key = match expr.get("key") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    return Err(SelectorError::MalformedLabelSelector(format!(
                        "matchExpressions[{i}].key must be a string, not {}",
                        json_type(other)
                    )))
                }
            };
            let op = match expr.get("operator") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    return Err(SelectorError::MalformedLabelSelector(format!(
                        "matchExpressions[{i}].operator must be a string, not {}",
                        json_type(other)
                    )))
                }
            };
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => {
                    let mut out = Vec::with_capacity(a.len());
                    for item in a {
                        match item {
                            Value::String(s) => out.push(s.clone()),
                            other => {
                                return Err(SelectorError::MalformedLabelSelector(format!(
                                    "matchExpressions[{i}].values must hold strings, not {}",
                                    json_type(other)
                                )))
                            }
                        }
                    }
                    out
                }
                Some(other) => {
                    return Err(SelectorError::MalformedLabelSelector(format!(
                        "matchExpressions[{i}].values must be an array, not {}",
                        json_type(other)
                    )))
                }
            };
            let operator = match op {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_string())),
            };
            requirements.push(Requirement::new(key, operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether the labels (`metadata.labels`, or an empty map when absent) satisfy the selector.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector restricts nothing (matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is the select-nothing selector (from a `null` `metav1.LabelSelector`).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value the selector requires `key` to have, when its first requirement on `key` is
    /// `=`, `==` or a one-value `in` (`RequiresExactMatch`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [only]) => Some(only),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// --- lexer -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next byte, or 0 at the end (a NUL byte also reads as the end, as upstream).
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn text(&self, start: usize, end: usize) -> String {
        // Tokens end on ASCII bytes, so these are character boundaries; stay panic-free anyway.
        String::from_utf8_lossy(self.s.as_bytes().get(start..end).unwrap_or_default()).into_owned()
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let c = self.read();
            if c == 0 {
                // The end, or a NUL byte (which ends the identifier without being part of it).
                break before;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break before;
            }
        };
        let lit = self.text(start, end);
        match keyword(&lit) {
            Some(tok) => (tok, lit),
            None => (Token::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buffer = String::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) {
                buffer.push(char::from(c));
                if let Some(tok) = keyword(&buffer) {
                    last = Some((tok, buffer.clone()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some(t) => t,
            None => (
                Token::Error,
                format!("error expected: keyword found '{buffer}'"),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(c) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

// --- parser ----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Parser {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            let done = tok == Token::EndOfString;
            items.push((tok, lit));
            if done {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, i: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(i)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let out = self.item(self.position, ctx);
        if self.position < self.items.len() {
            self.position += 1;
        }
        out
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| SelectorError::Requirement(Box::new(e)))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(unexpected(l2, "identifier after ','"));
                            }
                        }
                        _ => return Err(unexpected(l, "',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => return Err(unexpected(lit, "!, identifier, or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    /// The key, and `Exists`/`DoesNotExist` when no binary operator follows.
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(unexpected(lit, "identifier"));
        }
        if let Some(e) = validate_label_key(&lit, "<nil>") {
            return Err(SelectorError::Invalid(vec![e]));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(unexpected(lit, "in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// `(a,b,...)`, as a sorted set (`sets.String.List()`).
    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(SelectorError::ExpectedOpenParen { found: lit });
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(unexpected(lit, "')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(unexpected(lit, "',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut set: Vec<String> = Vec::new();
        let insert = |set: &mut Vec<String>, v: String| {
            if let Err(at) = set.binary_search(&v) {
                set.insert(at, v);
            }
        };
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    insert(&mut set, lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(unexpected(lit2, "',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        insert(&mut set, String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        insert(&mut set, String::new());
                        return Ok(set);
                    }
                    if tok2 == Token::Comma {
                        insert(&mut set, String::new());
                    }
                }
                _ => return Err(unexpected(lit, "',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(unexpected(lit, "identifier"))
        }
    }
}

fn unexpected(found: String, expected: &'static str) -> SelectorError {
    SelectorError::UnexpectedToken { found, expected }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// Which field label conversion and field set a resource uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Pod,
    Node,
    Namespace,
    Secret,
    Service,
    ReplicationController,
    CoreEvent,
    EventsEvent,
    Job,
    /// No conversion function of its own: `metadata.name` and `metadata.namespace` only.
    Default,
}

impl FieldKind {
    fn of(resource: &Resource) -> FieldKind {
        match (resource.group, resource.kind) {
            ("", "Pod") => FieldKind::Pod,
            ("", "Node") => FieldKind::Node,
            ("", "Namespace") => FieldKind::Namespace,
            ("", "Secret") => FieldKind::Secret,
            ("", "Service") => FieldKind::Service,
            ("", "ReplicationController") => FieldKind::ReplicationController,
            ("", "Event") => FieldKind::CoreEvent,
            ("events.k8s.io", "Event") => FieldKind::EventsEvent,
            ("batch", "Job") => FieldKind::Job,
            _ => FieldKind::Default,
        }
    }

    /// The kind's field label conversion: the (possibly renamed) label, or the upstream error.
    fn convert(self, label: &str) -> Result<&'static str, SelectorError> {
        let not_supported = || SelectorError::FieldLabelNotSupported(label.to_string());
        let accept = |allowed: &[&'static str]| allowed.iter().copied().find(|a| *a == label);
        match self {
            FieldKind::Pod => {
                if label == "spec.host" {
                    return Ok("spec.nodeName");
                }
                accept(&[
                    "metadata.name",
                    "metadata.namespace",
                    "spec.nodeName",
                    "spec.restartPolicy",
                    "spec.schedulerName",
                    "spec.serviceAccountName",
                    "spec.hostNetwork",
                    "status.phase",
                    "status.podIP",
                    "status.podIPs",
                    "status.nominatedNodeName",
                ])
                .ok_or_else(not_supported)
            }
            FieldKind::Node => {
                accept(&["metadata.name", "spec.unschedulable"]).ok_or_else(not_supported)
            }
            FieldKind::Namespace => {
                accept(&["status.phase", "metadata.name"]).ok_or_else(not_supported)
            }
            FieldKind::Secret => {
                accept(&["type", "metadata.namespace", "metadata.name"]).ok_or_else(not_supported)
            }
            FieldKind::Service => accept(&[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ])
            .ok_or_else(not_supported),
            FieldKind::ReplicationController => {
                accept(&["metadata.name", "metadata.namespace", "status.replicas"])
                    .ok_or_else(not_supported)
            }
            FieldKind::CoreEvent => accept(&[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ])
            .ok_or_else(not_supported),
            // events.k8s.io/v1 names map onto the core Event field set.
            FieldKind::EventsEvent => Ok(match label {
                "reason" => "reason",
                "regarding.kind" => "involvedObject.kind",
                "regarding.namespace" => "involvedObject.namespace",
                "regarding.name" => "involvedObject.name",
                "regarding.uid" => "involvedObject.uid",
                "regarding.apiVersion" => "involvedObject.apiVersion",
                "regarding.resourceVersion" => "involvedObject.resourceVersion",
                "regarding.fieldPath" => "involvedObject.fieldPath",
                "reportingController" => "reportingComponent",
                "source" => "source",
                "type" => "type",
                "metadata.namespace" => "metadata.namespace",
                "metadata.name" => "metadata.name",
                _ => return Err(not_supported()),
            }),
            FieldKind::Job => accept(&["metadata.name", "metadata.namespace", "status.successful"])
                .ok_or_else(|| SelectorError::JobFieldLabelNotSupported(label.to_string())),
            FieldKind::Default => accept(&["metadata.name", "metadata.namespace"])
                .ok_or_else(|| SelectorError::UnknownFieldSelector(label.to_string())),
        }
    }

    /// The value the registry's field set holds for a converted label, read from the object's
    /// JSON (either Event shape is accepted for both event kinds).
    fn value(self, label: &str, obj: &Value) -> String {
        match label {
            "metadata.name" => return text(obj, &["metadata", "name"]),
            "metadata.namespace" => return text(obj, &["metadata", "namespace"]),
            _ => {}
        }
        match self {
            FieldKind::Pod => match label {
                "spec.hostNetwork" => boolean(obj, &["spec", "hostNetwork"]),
                "status.podIP" => {
                    let ip = text(obj, &["status", "podIP"]);
                    if ip.is_empty() {
                        text(obj, &["status", "podIPs", "0", "ip"])
                    } else {
                        ip
                    }
                }
                // Accepted by the conversion but absent from the pod field set: always "".
                "status.podIPs" => String::new(),
                other => text_dotted(obj, other),
            },
            FieldKind::Node => match label {
                "spec.unschedulable" => boolean(obj, &["spec", "unschedulable"]),
                other => text_dotted(obj, other),
            },
            FieldKind::ReplicationController => match label {
                "status.replicas" => count(obj, &["status", "replicas"]),
                other => text_dotted(obj, other),
            },
            FieldKind::Job => match label {
                "status.successful" => count(obj, &["status", "succeeded"]),
                other => text_dotted(obj, other),
            },
            FieldKind::CoreEvent | FieldKind::EventsEvent => event_value(label, obj),
            FieldKind::Namespace | FieldKind::Secret | FieldKind::Service | FieldKind::Default => {
                text_dotted(obj, label)
            }
        }
    }
}

/// Event field set values (`event.ToSelectableFields`), from a core/v1 or events.k8s.io/v1 body.
fn event_value(label: &str, obj: &Value) -> String {
    let first = |paths: &[&[&str]]| {
        paths
            .iter()
            .map(|p| text(obj, p))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
    };
    if let Some(field) = label.strip_prefix("involvedObject.") {
        return first(&[&["involvedObject", field], &["regarding", field]]);
    }
    match label {
        "reportingComponent" => first(&[&["reportingComponent"], &["reportingController"]]),
        "source" => first(&[
            &["source", "component"],
            &["deprecatedSource", "component"],
            &["reportingComponent"],
            &["reportingController"],
        ]),
        other => text_dotted(obj, other),
    }
}

fn lookup<'v>(obj: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(obj, |v, seg| match v {
        Value::Object(m) => m.get(*seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A string field; unset (or null) is `""`.
fn text(obj: &Value, path: &[&str]) -> String {
    match lookup(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn text_dotted(obj: &Value, label: &str) -> String {
    let path: Vec<&str> = label.split('.').collect();
    text(obj, &path)
}

/// A bool field as `strconv.FormatBool` prints it; unset is `"false"`.
fn boolean(obj: &Value, path: &[&str]) -> String {
    let set = match lookup(obj, path) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    set.to_string()
}

/// An integer field as `strconv.Itoa` prints it; unset is `"0"`.
fn count(obj: &Value, path: &[&str]) -> String {
    match lookup(obj, path) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => "0".to_string(),
    }
}

/// One `field=value` / `field!=value` term (after label conversion).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed and validated field selector: the AND of its terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
    kind: FieldKind,
}

impl FieldSelector {
    /// The selector that matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector {
            terms: Vec::new(),
            kind: FieldKind::Default,
        }
    }

    /// Parses the `fieldSelector` query parameter (`fields.ParseSelector`) and runs every label
    /// through the resource's field label conversion, as the API server does before listing.
    /// Terms are evaluated in sorted order, so the first unsupported label in that order is the
    /// one reported.
    pub fn parse(s: &str, resource: &Resource) -> Result<FieldSelector, SelectorError> {
        let kind = FieldKind::of(resource);
        let mut parts = split_terms(s);
        parts.sort();
        let mut raw = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            let value = unescape_value(rhs)?;
            raw.push((lhs, op == "!=", value));
        }
        let mut terms = Vec::with_capacity(raw.len());
        for (lhs, negated, value) in raw {
            let field = kind.convert(lhs)?;
            terms.push(FieldTerm {
                field: field.to_string(),
                value,
                negated,
            });
        }
        Ok(FieldSelector { terms, kind })
    }

    /// Whether the object's field values satisfy every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (self.kind.value(&t.field, obj) == t.value) != t.negated)
    }

    /// Whether the selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// `Some(name)` when the selector requires `metadata.name=name` (lets a list be narrowed
    /// to one key).
    pub fn exact_name(&self) -> Option<&str> {
        self.requires_exact_match("metadata.name")
    }

    /// The value an `=`/`==` term requires for a (converted) field label.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field == field)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form (`fields.Selector.String()`): converted labels, escaped values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// Splits on commas not escaped by a backslash (the backslash stays in the term).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(s.get(start..).unwrap_or_default());
    terms
}

/// Splits at the first `!=`, `==` or `=` (checked in that order at each position).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or_default();
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((
                    term.get(..i).unwrap_or_default(),
                    op,
                    rest.get(op.len()..).unwrap_or_default(),
                ));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(SelectorError::InvalidEscape(format!("\\{other}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedRune(c)),
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    fn res(group: &str, plural: &str) -> &'static Resource {
        resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .expect("resource is served")
    }

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn parse_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    fn field_err(s: &str, r: &Resource) -> String {
        match FieldSelector::parse(s, r) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    const NAME_PART_REGEX: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    // --- label selectors: parsing and canonical form ---

    #[test]
    fn parses_every_operator_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x = a", "x=a"),
            ("x", "x"),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin ( b , a )", "x notin (a,b)"),
            ("x in (a)", "x in (a)"),
            ("z=1,a=2,m", "a=2,m,z=1"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            ("x in (in,notin)", "x in (in,notin)"),
            ("in in (notin)", "in in (notin)"),
            ("x=", "x="),
            ("x=,y", "x=,y"),
            ("example.com/app=web", "example.com/app=web"),
            ("a in (b,b,c)", "a in (b,c)"),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), want, "{input:?}");
        }
        assert!(LabelSelector::parse("")
            .map(|s| s.is_empty())
            .unwrap_or(false));
        assert!(!LabelSelector::parse("a")
            .map(|s| s.is_empty())
            .unwrap_or(true));
    }

    #[test]
    fn matches_label_sets() {
        let l = labels(json!({"app": "web", "tier": "frontend", "env": "prod", "replicas": "3"}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web,db)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            "replicas>2",
            "replicas<4",
            "app=web,tier in (frontend),env,!canary",
        ];
        for s in yes {
            let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(sel.matches(&l), "{s} should match");
        }
        let no = [
            "app=db",
            "missing=x",
            "app!=web",
            "app in (db)",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "replicas>3",
            "replicas<3",
            "app>1",
            "missing>1",
            "app=web,tier=backend",
        ];
        for s in no {
            let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(!sel.matches(&l), "{s} should not match");
        }
        // Empty value: `x=` matches an empty label value, not a missing one.
        let sel = LabelSelector::parse("x=").expect("parses");
        assert!(sel.matches(&labels(json!({"x": ""}))));
        assert!(!sel.matches(&Map::new()));
        assert!(LabelSelector::parse("x notin ()")
            .expect("parses")
            .matches(&Map::new()));
    }

    #[test]
    fn requires_exact_match() {
        let sel = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").expect("parses");
        assert_eq!(sel.requires_exact_match("a"), Some("1"));
        assert_eq!(sel.requires_exact_match("b"), Some("2"));
        assert_eq!(sel.requires_exact_match("c"), None);
        assert_eq!(sel.requires_exact_match("d"), None);
        assert_eq!(sel.requires_exact_match("e"), None);
    }

    // --- label selectors: errors ---

    #[test]
    fn invalid_keys_report_the_qualified_name_rules() {
        assert_eq!(
            parse_err("app:monolith"),
            format!("unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part {NAME_PART_REGEX}")
        );
        assert_eq!(
            parse_err("*bar"),
            format!("unable to parse requirement: <nil>: Invalid value: \"*bar\": name part {NAME_PART_REGEX}")
        );
        assert_eq!(
            parse_err("a/b/c ?=? def"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(
            parse_err("app.kubernetes_io/name=x"),
            "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            parse_err("/a"),
            "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
        );
        assert_eq!(
            parse_err("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; name part {NAME_PART_REGEX}"
            )
        );
        let long = "k".repeat(64);
        assert_eq!(
            parse_err(&long),
            format!("unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters")
        );
    }

    #[test]
    fn invalid_values_report_the_label_value_rules() {
        let long = "z".repeat(64);
        assert_eq!(
            parse_err(&format!("good-key={long}")),
            format!(
                "unable to parse requirement: values[0][good-key]: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
        assert_eq!(
            parse_err("a=-b"),
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        // Values are indexed in sorted order; several errors are aggregated in brackets.
        let msg = parse_err("a in (ok,-x,_y)");
        assert!(
            msg.starts_with("unable to parse requirement: [values[0][a]: Invalid value: \"-x\": "),
            "{msg}"
        );
        assert!(
            msg.contains(", values[1][a]: Invalid value: \"_y\": "),
            "{msg}"
        );
        assert!(msg.ends_with("')]"), "{msg}");
        assert_eq!(
            parse_err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            parse_err("a<"),
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn syntax_errors_match_upstream() {
        let cases = [
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a=b=c", "found '=', expected: ',' or 'end of string'"),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            ("a,,b", "found ',', expected: identifier after ','"),
            (
                ",a",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "!!a",
                "unable to parse requirement: found '!', expected: identifier",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a in (b c)",
                "unable to parse requirement: found 'c', expected: ',' or ')'",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (b,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier",
            ),
            (
                "a=(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "a notin",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a in in",
                "unable to parse requirement: found 'in' expected: '('",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_err(input), want, "{input:?}");
        }
    }

    // --- metav1.LabelSelector ---

    #[test]
    fn label_selector_objects() {
        let nothing =
            LabelSelector::from_label_selector_object(&Value::Null).expect("null is fine");
        assert!(!nothing.matches(&Map::new()));
        assert!(!nothing.is_empty());
        assert!(nothing.matches_nothing());
        assert_eq!(nothing.to_string(), "");

        for v in [
            json!({}),
            json!({"matchLabels": {}, "matchExpressions": []}),
            json!({"matchLabels": null}),
        ] {
            let all = LabelSelector::from_label_selector_object(&v).expect("empty is fine");
            assert!(all.is_empty());
            assert!(all.matches(&Map::new()));
        }

        let sel = LabelSelector::from_label_selector_object(&json!({
            "matchLabels": {"app": "web", "b": "1"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "cache"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist", "values": []},
            ]
        }))
        .expect("valid");
        assert_eq!(
            sel.to_string(),
            "app=web,b=1,!canary,env notin (dev),team,tier in (cache,frontend)"
        );
        assert!(sel.matches(&labels(
            json!({"app": "web", "b": "1", "tier": "cache", "team": "x"})
        )));
        assert!(!sel.matches(&labels(
            json!({"app": "web", "b": "1", "tier": "cache", "team": "x", "canary": ""})
        )));
        assert!(!sel.matches(&labels(
            json!({"app": "web", "b": "1", "tier": "db", "team": "x"})
        )));
        assert!(!sel.matches(&labels(
            json!({"app": "web", "b": "1", "tier": "cache", "team": "x", "env": "dev"})
        )));
    }

    #[test]
    fn label_selector_object_errors() {
        let err = |v: Value| match LabelSelector::from_label_selector_object(&v) {
            Ok(s) => panic!("accepted {v}: {s}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})),
            "\"Equals\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a"}]})),
            "\"\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        assert_eq!(
            err(json!({"matchLabels": {"bad key": "v"}})),
            format!("key: Invalid value: \"bad key\": name part {NAME_PART_REGEX}")
        );
        assert!(err(json!({"matchLabels": {"a": "bad value"}}))
            .starts_with("values[0][a]: Invalid value: \"bad value\": "));
        assert!(err(json!({"matchLabels": {"a": 1}})).contains("must be a string"));
        assert!(err(json!("a=b")).contains("must be an object"));
    }

    #[test]
    fn selector_from_set() {
        let sel = LabelSelector::from_set(&labels(json!({"b": "2", "a": "1"})));
        assert_eq!(sel.to_string(), "a=1,b=2");
        assert!(sel.matches(&labels(json!({"a": "1", "b": "2", "c": "3"}))));
        assert!(!sel.matches(&labels(json!({"a": "1"}))));
        assert!(LabelSelector::from_set(&Map::new()).is_empty());
    }

    // --- field selectors ---

    fn pod(node: Option<&str>, phase: Option<&str>) -> Value {
        let mut p =
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": []}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        if let Some(ph) = phase {
            p["status"] = json!({"phase": ph});
        }
        p
    }

    #[test]
    fn kubectl_describe_node_pod_query() {
        let pods = res("", "pods");
        let sel = FieldSelector::parse(
            "spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed",
            pods,
        )
        .expect("valid");
        assert_eq!(
            sel.to_string(),
            "spec.nodeName=node-1,status.phase!=Failed,status.phase!=Succeeded"
        );
        assert!(sel.matches(&pod(Some("node-1"), Some("Running"))));
        assert!(sel.matches(&pod(Some("node-1"), None)));
        assert!(!sel.matches(&pod(Some("node-1"), Some("Succeeded"))));
        assert!(!sel.matches(&pod(Some("node-1"), Some("Failed"))));
        assert!(!sel.matches(&pod(Some("node-2"), Some("Running"))));
        assert!(!sel.matches(&pod(None, Some("Running"))));
        assert_eq!(sel.exact_name(), None);
        assert!(!sel.is_empty());
    }

    #[test]
    fn unset_fields_compare_as_their_zero_value() {
        let pods = res("", "pods");
        let unscheduled = FieldSelector::parse("spec.nodeName=", pods).expect("valid");
        assert!(unscheduled.matches(&pod(None, None)));
        assert!(!unscheduled.matches(&pod(Some("n"), None)));
        let host = FieldSelector::parse("spec.hostNetwork=false", pods).expect("valid");
        assert!(host.matches(&pod(None, None)));
        let mut hn = pod(None, None);
        hn["spec"]["hostNetwork"] = json!(true);
        assert!(!host.matches(&hn));
        assert!(FieldSelector::parse("spec.hostNetwork=true", pods)
            .expect("valid")
            .matches(&hn));
        // Old clients' spec.host is spec.nodeName.
        let legacy = FieldSelector::parse("spec.host=n", pods).expect("valid");
        assert_eq!(legacy.to_string(), "spec.nodeName=n");
        assert!(legacy.matches(&pod(Some("n"), None)));
        // status.podIP: podIP, else podIPs[0]; status.podIPs is accepted but always "".
        let ip = json!({"metadata": {"name": "p"}, "status": {"podIPs": [{"ip": "10.0.0.1"}]}});
        assert!(FieldSelector::parse("status.podIP=10.0.0.1", pods)
            .expect("valid")
            .matches(&ip));
        assert!(FieldSelector::parse("status.podIPs=", pods)
            .expect("valid")
            .matches(&ip));
        assert!(!FieldSelector::parse("status.podIPs=10.0.0.1", pods)
            .expect("valid")
            .matches(&ip));

        let nodes = res("", "nodes");
        let schedulable = FieldSelector::parse("spec.unschedulable=false", nodes).expect("valid");
        assert!(schedulable.matches(&json!({"metadata": {"name": "n"}})));
        assert!(!schedulable
            .matches(&json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})));

        let jobs = res("batch", "jobs");
        let none = FieldSelector::parse("status.successful=0", jobs).expect("valid");
        assert!(none.matches(&json!({"metadata": {"name": "j"}})));
        assert!(FieldSelector::parse("status.successful=2", jobs)
            .expect("valid")
            .matches(&json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}})));

        // metadata.namespace of a cluster-scoped object is "".
        let pvs = res("", "persistentvolumes");
        assert!(FieldSelector::parse("metadata.namespace=", pvs)
            .expect("valid")
            .matches(&json!({"metadata": {"name": "v"}})));
        assert!(!FieldSelector::parse("metadata.namespace=x", pvs)
            .expect("valid")
            .matches(&json!({"metadata": {"name": "v"}})));
    }

    #[test]
    fn kubectl_describe_events_query() {
        let events = res("", "events");
        let sel = FieldSelector::parse(
            "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=1234-abcd",
            events,
        )
        .expect("valid");
        let ev = json!({
            "metadata": {"name": "web-1.17", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "1234-abcd"},
            "reason": "Scheduled", "type": "Normal", "source": {"component": "default-scheduler"}
        });
        assert!(sel.matches(&ev));
        let mut other = ev.clone();
        other["involvedObject"]["uid"] = json!("other");
        assert!(!sel.matches(&other));

        for (s, want) in [
            ("involvedObject.kind=Pod", true),
            ("reason=Scheduled,type=Normal", true),
            ("source=default-scheduler", true),
            ("reportingComponent=", true),
            ("type=Warning", false),
            ("metadata.name=web-1.17", true),
        ] {
            assert_eq!(
                FieldSelector::parse(s, events).expect("valid").matches(&ev),
                want,
                "{s}"
            );
        }
        // source falls back to reportingComponent when source.component is empty.
        let newer = json!({"metadata": {"name": "e"}, "reportingComponent": "kubelet"});
        assert!(FieldSelector::parse("source=kubelet", events)
            .expect("valid")
            .matches(&newer));
        assert!(FieldSelector::parse("reportingComponent=kubelet", events)
            .expect("valid")
            .matches(&newer));
    }

    #[test]
    fn events_k8s_io_field_labels() {
        let events = res("events.k8s.io", "events");
        let ev = json!({
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u"},
            "reason": "Started", "type": "Normal", "reportingController": "kubelet"
        });
        let sel = FieldSelector::parse(
            "regarding.name=web-1,regarding.uid=u,reportingController=kubelet",
            events,
        )
        .expect("valid");
        assert!(sel.matches(&ev));
        assert!(
            FieldSelector::parse("source=kubelet,reason=Started", events)
                .expect("valid")
                .matches(&ev)
        );
        assert!(!FieldSelector::parse("regarding.kind=Node", events)
            .expect("valid")
            .matches(&ev));
        assert_eq!(
            field_err("involvedObject.name=x", events),
            "field label not supported: involvedObject.name"
        );
        assert_eq!(
            field_err("note=x", events),
            "field label not supported: note"
        );
    }

    #[test]
    fn other_kinds_field_labels() {
        let secret =
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls"});
        let secrets = res("", "secrets");
        assert!(FieldSelector::parse("type=kubernetes.io/tls", secrets)
            .expect("valid")
            .matches(&secret));
        assert!(!FieldSelector::parse("type!=kubernetes.io/tls", secrets)
            .expect("valid")
            .matches(&secret));

        let ns = res("", "namespaces");
        let active = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert!(
            FieldSelector::parse("status.phase=Active,metadata.name=default", ns)
                .expect("valid")
                .matches(&active)
        );

        let svcs = res("", "services");
        let svc = json!({"metadata": {"name": "k"}, "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1"}});
        assert!(
            FieldSelector::parse("spec.type=ClusterIP,spec.clusterIP=10.96.0.1", svcs)
                .expect("valid")
                .matches(&svc)
        );

        let cms = res("", "configmaps");
        let cm = json!({"metadata": {"name": "c", "namespace": "d"}});
        assert!(
            FieldSelector::parse("metadata.name=c,metadata.namespace=d", cms)
                .expect("valid")
                .matches(&cm)
        );
        assert!(FieldSelector::parse("metadata.name!=c", cms)
            .map(|s| !s.matches(&cm))
            .unwrap_or(false));
    }

    #[test]
    fn unsupported_field_labels() {
        let pods = res("", "pods");
        assert_eq!(
            field_err("spec.foo=bar", pods),
            "field label not supported: spec.foo"
        );
        // Terms are converted in sorted order: the first unsupported one is reported.
        assert_eq!(
            field_err("spec.zzz=1,spec.aaa=2", pods),
            "field label not supported: spec.aaa"
        );
        assert_eq!(
            field_err("metadata.namespace=x", res("", "nodes")),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            field_err("metadata.namespace=x", res("", "namespaces")),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            field_err("data=x", res("", "secrets")),
            "field label not supported: data"
        );
        assert_eq!(
            field_err("status.replicas=0", res("", "services")),
            "field label not supported: status.replicas"
        );
        assert_eq!(
            field_err("reportingController=x", res("", "events")),
            "field label not supported: reportingController"
        );
        assert_eq!(
            field_err("data.x=1", res("", "configmaps")),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        // apps/v1 registers no conversion function, so even status.replicas is refused.
        assert_eq!(
            field_err("status.replicas=1", res("apps", "replicasets")),
            "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            field_err("spec.suspend=true", res("batch", "jobs")),
            "field label \"spec.suspend\" not supported for batchv1.Job"
        );
    }

    #[test]
    fn field_selector_syntax_and_escaping() {
        let cms = res("", "configmaps");
        assert_eq!(
            field_err("foo", cms),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            field_err("metadata.name=a,bar", cms),
            "invalid selector: 'metadata.name=a,bar'; can't understand 'bar'"
        );
        assert_eq!(
            field_err("metadata.name=a\\x", cms),
            "invalid field selector: invalid escape sequence: \\x"
        );
        assert_eq!(
            field_err("metadata.name=a\\", cms),
            "invalid field selector: invalid escape sequence: \\"
        );
        assert_eq!(
            field_err("metadata.name=a=b", cms),
            "invalid field selector: unescaped character in value: 61"
        );

        let sel = FieldSelector::parse("metadata.name=a\\,b\\=c\\\\d", cms).expect("valid");
        assert_eq!(sel.exact_name(), Some("a,b=c\\d"));
        assert_eq!(sel.to_string(), "metadata.name=a\\,b\\=c\\\\d");
        assert!(sel.matches(&json!({"metadata": {"name": "a,b=c\\d"}})));

        let sel = FieldSelector::parse("metadata.name==x,,", cms).expect("valid");
        assert_eq!(sel.to_string(), "metadata.name=x");
        assert_eq!(sel.exact_name(), Some("x"));
        let sel = FieldSelector::parse("metadata.name!=x", cms).expect("valid");
        assert_eq!(sel.exact_name(), None);
        assert!(FieldSelector::parse("", cms)
            .map(|s| s.is_empty())
            .unwrap_or(false));
        assert!(FieldSelector::everything().matches(&json!({})));
    }
}
