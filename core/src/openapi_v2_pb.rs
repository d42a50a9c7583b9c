//! `GET /openapi/v2` in protobuf form: the swagger 2.0 document of [`crate::openapi::v2_document`]
//! encoded as the gnostic `openapi.v2.Document` message (google/gnostic `openapiv2/OpenAPIv2.proto`),
//! which is what kubectl asks for with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
//!
//! kubectl 1.27/1.28 use this document for `explain`, client-side validation and the
//! `fieldValidation` query-parameter check; kubectl 1.29+ fall back to it when a group-version is
//! missing from the v3 root. kube-openapi (`pkg/util/proto`) reads `definitions` (type, properties,
//! items, `$ref`, required, additionalProperties and the `x-kubernetes-*` extensions) and the PATCH
//! operations of `paths`.
//!
//! The messages below are hand-written `prost` mirrors of the gnostic ones (same field numbers),
//! limited to what a swagger document can hold. As gnostic does, every `x-…` key becomes a
//! `NamedAny { name, value: Any { yaml } }` whose `yaml` is the YAML text of the value, and the
//! values of `default`, `example` and `enum` are `Any { yaml }` too. OAuth2 security definitions
//! are not represented (kubelite publishes only the `BearerToken` API-key scheme).

use prost::Message;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The media type kubectl (client-go) asks for.
pub const MIME_PB: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The other spelling of [`MIME_PB`], and the Content-Type of the protobuf response for either:
/// kube-openapi answers with this one because `@` is not valid in a media type, and Go's
/// `mime.ParseMediaType` (which client-go applies to the response) rejects the `@` form with
/// "mime: unexpected content after media subtype".
pub const MIME_PB_DOTTED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The gnostic `openapi.v2` messages (field numbers as in `OpenAPIv2.proto`).
pub mod pb {
    /// `openapi.v2.Any`. Field 1 (`google.protobuf.Any value`) is never written.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "2")]
        pub yaml: String,
    }

    /// `openapi.v2.NamedAny`: a vendor extension or an example.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedAny {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Document {
        #[prost(string, tag = "1")]
        pub swagger: String,
        #[prost(message, optional, tag = "2")]
        pub info: Option<Info>,
        #[prost(string, tag = "3")]
        pub host: String,
        #[prost(string, tag = "4")]
        pub base_path: String,
        #[prost(string, repeated, tag = "5")]
        pub schemes: Vec<String>,
        #[prost(string, repeated, tag = "6")]
        pub consumes: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub produces: Vec<String>,
        #[prost(message, optional, tag = "8")]
        pub paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        pub definitions: Option<Definitions>,
        #[prost(message, optional, tag = "10")]
        pub parameters: Option<ParameterDefinitions>,
        #[prost(message, optional, tag = "11")]
        pub responses: Option<ResponseDefinitions>,
        #[prost(message, repeated, tag = "12")]
        pub security: Vec<SecurityRequirement>,
        #[prost(message, optional, tag = "13")]
        pub security_definitions: Option<SecurityDefinitions>,
        #[prost(message, repeated, tag = "14")]
        pub tags: Vec<Tag>,
        #[prost(message, optional, tag = "15")]
        pub external_docs: Option<ExternalDocs>,
        #[prost(message, repeated, tag = "16")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Info {
        #[prost(string, tag = "1")]
        pub title: String,
        #[prost(string, tag = "2")]
        pub version: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub terms_of_service: String,
        #[prost(message, optional, tag = "5")]
        pub contact: Option<Contact>,
        #[prost(message, optional, tag = "6")]
        pub license: Option<License>,
        #[prost(message, repeated, tag = "7")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Contact {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub url: String,
        #[prost(string, tag = "3")]
        pub email: String,
        #[prost(message, repeated, tag = "4")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct License {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub url: String,
        #[prost(message, repeated, tag = "3")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExternalDocs {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(string, tag = "2")]
        pub url: String,
        #[prost(message, repeated, tag = "3")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tag {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(message, optional, tag = "3")]
        pub external_docs: Option<ExternalDocs>,
        #[prost(message, repeated, tag = "4")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Paths {
        #[prost(message, repeated, tag = "1")]
        pub vendor_extension: Vec<NamedAny>,
        #[prost(message, repeated, tag = "2")]
        pub path: Vec<NamedPathItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedPathItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<PathItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PathItem {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(message, optional, tag = "2")]
        pub get: Option<Operation>,
        #[prost(message, optional, tag = "3")]
        pub put: Option<Operation>,
        #[prost(message, optional, tag = "4")]
        pub post: Option<Operation>,
        #[prost(message, optional, tag = "5")]
        pub delete: Option<Operation>,
        #[prost(message, optional, tag = "6")]
        pub options: Option<Operation>,
        #[prost(message, optional, tag = "7")]
        pub head: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        pub patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, repeated, tag = "10")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        #[prost(string, repeated, tag = "1")]
        pub tags: Vec<String>,
        #[prost(string, tag = "2")]
        pub summary: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(message, optional, tag = "4")]
        pub external_docs: Option<ExternalDocs>,
        #[prost(string, tag = "5")]
        pub operation_id: String,
        #[prost(string, repeated, tag = "6")]
        pub produces: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, optional, tag = "9")]
        pub responses: Option<Responses>,
        #[prost(string, repeated, tag = "10")]
        pub schemes: Vec<String>,
        #[prost(bool, tag = "11")]
        pub deprecated: bool,
        #[prost(message, repeated, tag = "12")]
        pub security: Vec<SecurityRequirement>,
        #[prost(message, repeated, tag = "13")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// `openapi.v2.ParametersItem`: an inline parameter or a `$ref` to `#/parameters/…`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ParametersItem {
        #[prost(oneof = "parameters_item::Oneof", tags = "1, 2")]
        pub oneof: Option<parameters_item::Oneof>,
    }

    pub mod parameters_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Parameter(Box<super::Parameter>),
            #[prost(message, tag = "2")]
            JsonReference(super::JsonReference),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct JsonReference {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Parameter {
        #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
        pub oneof: Option<parameter::Oneof>,
    }

    pub mod parameter {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            BodyParameter(super::BodyParameter),
            #[prost(message, tag = "2")]
            NonBodyParameter(super::NonBodyParameter),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BodyParameter {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub r#in: String,
        #[prost(bool, tag = "4")]
        pub required: bool,
        #[prost(message, optional, tag = "5")]
        pub schema: Option<Schema>,
        #[prost(message, repeated, tag = "6")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NonBodyParameter {
        #[prost(oneof = "non_body_parameter::Oneof", tags = "1, 2, 3, 4")]
        pub oneof: Option<non_body_parameter::Oneof>,
    }

    pub mod non_body_parameter {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            HeaderParameterSubSchema(super::HeaderParameterSubSchema),
            #[prost(message, tag = "2")]
            FormDataParameterSubSchema(super::FormDataParameterSubSchema),
            #[prost(message, tag = "3")]
            QueryParameterSubSchema(super::QueryParameterSubSchema),
            #[prost(message, tag = "4")]
            PathParameterSubSchema(super::PathParameterSubSchema),
        }
    }

    /// `QueryParameterSubSchema` and `FormDataParameterSubSchema` (identical field numbers).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub r#in: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(bool, tag = "5")]
        pub allow_empty_value: bool,
        #[prost(string, tag = "6")]
        pub r#type: String,
        #[prost(string, tag = "7")]
        pub format: String,
        #[prost(message, optional, tag = "8")]
        pub items: Option<PrimitivesItems>,
        #[prost(string, tag = "9")]
        pub collection_format: String,
        #[prost(message, optional, tag = "10")]
        pub default: Option<Any>,
        #[prost(double, tag = "11")]
        pub maximum: f64,
        #[prost(bool, tag = "12")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "13")]
        pub minimum: f64,
        #[prost(bool, tag = "14")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "15")]
        pub max_length: i64,
        #[prost(int64, tag = "16")]
        pub min_length: i64,
        #[prost(string, tag = "17")]
        pub pattern: String,
        #[prost(int64, tag = "18")]
        pub max_items: i64,
        #[prost(int64, tag = "19")]
        pub min_items: i64,
        #[prost(bool, tag = "20")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "21")]
        pub r#enum: Vec<Any>,
        #[prost(double, tag = "22")]
        pub multiple_of: f64,
        #[prost(message, repeated, tag = "23")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// Same layout as [`QueryParameterSubSchema`].
    pub type FormDataParameterSubSchema = QueryParameterSubSchema;

    /// `PathParameterSubSchema` and `HeaderParameterSubSchema` (identical field numbers).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PathParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub r#in: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(string, tag = "5")]
        pub r#type: String,
        #[prost(string, tag = "6")]
        pub format: String,
        #[prost(message, optional, tag = "7")]
        pub items: Option<PrimitivesItems>,
        #[prost(string, tag = "8")]
        pub collection_format: String,
        #[prost(message, optional, tag = "9")]
        pub default: Option<Any>,
        #[prost(double, tag = "10")]
        pub maximum: f64,
        #[prost(bool, tag = "11")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "12")]
        pub minimum: f64,
        #[prost(bool, tag = "13")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "14")]
        pub max_length: i64,
        #[prost(int64, tag = "15")]
        pub min_length: i64,
        #[prost(string, tag = "16")]
        pub pattern: String,
        #[prost(int64, tag = "17")]
        pub max_items: i64,
        #[prost(int64, tag = "18")]
        pub min_items: i64,
        #[prost(bool, tag = "19")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "20")]
        pub r#enum: Vec<Any>,
        #[prost(double, tag = "21")]
        pub multiple_of: f64,
        #[prost(message, repeated, tag = "22")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// Same layout as [`PathParameterSubSchema`].
    pub type HeaderParameterSubSchema = PathParameterSubSchema;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PrimitivesItems {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub format: String,
        #[prost(message, optional, boxed, tag = "3")]
        pub items: Option<Box<PrimitivesItems>>,
        #[prost(string, tag = "4")]
        pub collection_format: String,
        #[prost(message, optional, tag = "5")]
        pub default: Option<Any>,
        #[prost(double, tag = "6")]
        pub maximum: f64,
        #[prost(bool, tag = "7")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "8")]
        pub minimum: f64,
        #[prost(bool, tag = "9")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "10")]
        pub max_length: i64,
        #[prost(int64, tag = "11")]
        pub min_length: i64,
        #[prost(string, tag = "12")]
        pub pattern: String,
        #[prost(int64, tag = "13")]
        pub max_items: i64,
        #[prost(int64, tag = "14")]
        pub min_items: i64,
        #[prost(bool, tag = "15")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "16")]
        pub r#enum: Vec<Any>,
        #[prost(double, tag = "17")]
        pub multiple_of: f64,
        #[prost(message, repeated, tag = "18")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Header {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub format: String,
        #[prost(message, optional, tag = "3")]
        pub items: Option<PrimitivesItems>,
        #[prost(string, tag = "4")]
        pub collection_format: String,
        #[prost(message, optional, tag = "5")]
        pub default: Option<Any>,
        #[prost(double, tag = "6")]
        pub maximum: f64,
        #[prost(bool, tag = "7")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "8")]
        pub minimum: f64,
        #[prost(bool, tag = "9")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "10")]
        pub max_length: i64,
        #[prost(int64, tag = "11")]
        pub min_length: i64,
        #[prost(string, tag = "12")]
        pub pattern: String,
        #[prost(int64, tag = "13")]
        pub max_items: i64,
        #[prost(int64, tag = "14")]
        pub min_items: i64,
        #[prost(bool, tag = "15")]
        pub unique_items: bool,
        #[prost(message, repeated, tag = "16")]
        pub r#enum: Vec<Any>,
        #[prost(double, tag = "17")]
        pub multiple_of: f64,
        #[prost(string, tag = "18")]
        pub description: String,
        #[prost(message, repeated, tag = "19")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedHeader {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Header>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Headers {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedHeader>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Examples {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Responses {
        #[prost(message, repeated, tag = "1")]
        pub response_code: Vec<NamedResponseValue>,
        #[prost(message, repeated, tag = "2")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedResponseValue {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<ResponseValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResponseValue {
        #[prost(oneof = "response_value::Oneof", tags = "1, 2")]
        pub oneof: Option<response_value::Oneof>,
    }

    pub mod response_value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Response(Box<super::Response>),
            #[prost(message, tag = "2")]
            JsonReference(super::JsonReference),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Response {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(message, optional, tag = "2")]
        pub schema: Option<SchemaItem>,
        #[prost(message, optional, tag = "3")]
        pub headers: Option<Headers>,
        #[prost(message, optional, tag = "4")]
        pub examples: Option<Examples>,
        #[prost(message, repeated, tag = "5")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SchemaItem {
        #[prost(oneof = "schema_item::Oneof", tags = "1, 2")]
        pub oneof: Option<schema_item::Oneof>,
    }

    pub mod schema_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Schema(Box<super::Schema>),
            #[prost(message, tag = "2")]
            FileSchema(Box<super::FileSchema>),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileSchema {
        #[prost(string, tag = "1")]
        pub format: String,
        #[prost(string, tag = "2")]
        pub title: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(message, optional, tag = "4")]
        pub default: Option<Any>,
        #[prost(string, repeated, tag = "5")]
        pub required: Vec<String>,
        #[prost(string, tag = "6")]
        pub r#type: String,
        #[prost(bool, tag = "7")]
        pub read_only: bool,
        #[prost(message, optional, tag = "8")]
        pub external_docs: Option<ExternalDocs>,
        #[prost(message, optional, tag = "9")]
        pub example: Option<Any>,
        #[prost(message, repeated, tag = "10")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Definitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedSchema {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Schema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ParameterDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedParameter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedParameter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Parameter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResponseDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedResponse>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedResponse {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Response>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityRequirement {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedStringArray>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedStringArray {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<StringArray>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringArray {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedSecurityDefinitionsItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<SecurityDefinitionsItem>,
    }

    /// `openapi.v2.SecurityDefinitionsItem`, without the OAuth2 variants (tags 3–6).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityDefinitionsItem {
        #[prost(oneof = "security_definitions_item::Oneof", tags = "1, 2")]
        pub oneof: Option<security_definitions_item::Oneof>,
    }

    pub mod security_definitions_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            BasicAuthenticationSecurity(super::BasicAuthenticationSecurity),
            #[prost(message, tag = "2")]
            ApiKeySecurity(super::ApiKeySecurity),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BasicAuthenticationSecurity {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(message, repeated, tag = "3")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ApiKeySecurity {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub r#in: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(message, repeated, tag = "5")]
        pub vendor_extension: Vec<NamedAny>,
    }

    /// `openapi.v2.Schema` (a deterministic JSON schema).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Schema {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub format: String,
        #[prost(string, tag = "3")]
        pub title: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(message, optional, tag = "5")]
        pub default: Option<Any>,
        #[prost(double, tag = "6")]
        pub multiple_of: f64,
        #[prost(double, tag = "7")]
        pub maximum: f64,
        #[prost(bool, tag = "8")]
        pub exclusive_maximum: bool,
        #[prost(double, tag = "9")]
        pub minimum: f64,
        #[prost(bool, tag = "10")]
        pub exclusive_minimum: bool,
        #[prost(int64, tag = "11")]
        pub max_length: i64,
        #[prost(int64, tag = "12")]
        pub min_length: i64,
        #[prost(string, tag = "13")]
        pub pattern: String,
        #[prost(int64, tag = "14")]
        pub max_items: i64,
        #[prost(int64, tag = "15")]
        pub min_items: i64,
        #[prost(bool, tag = "16")]
        pub unique_items: bool,
        #[prost(int64, tag = "17")]
        pub max_properties: i64,
        #[prost(int64, tag = "18")]
        pub min_properties: i64,
        #[prost(string, repeated, tag = "19")]
        pub required: Vec<String>,
        #[prost(message, repeated, tag = "20")]
        pub r#enum: Vec<Any>,
        #[prost(message, optional, boxed, tag = "21")]
        pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
        #[prost(message, optional, tag = "22")]
        pub r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        pub items: Option<ItemsItem>,
        #[prost(message, repeated, tag = "24")]
        pub all_of: Vec<Schema>,
        #[prost(message, optional, tag = "25")]
        pub properties: Option<Properties>,
        #[prost(string, tag = "26")]
        pub discriminator: String,
        #[prost(bool, tag = "27")]
        pub read_only: bool,
        #[prost(message, optional, tag = "28")]
        pub xml: Option<Xml>,
        #[prost(message, optional, tag = "29")]
        pub external_docs: Option<ExternalDocs>,
        #[prost(message, optional, tag = "30")]
        pub example: Option<Any>,
        #[prost(message, repeated, tag = "31")]
        pub vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AdditionalPropertiesItem {
        #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
        pub oneof: Option<additional_properties_item::Oneof>,
    }

    pub mod additional_properties_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Schema(Box<super::Schema>),
            #[prost(bool, tag = "2")]
            Boolean(bool),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        pub schema: Vec<Schema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Properties {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Xml {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub namespace: String,
        #[prost(string, tag = "3")]
        pub prefix: String,
        #[prost(bool, tag = "4")]
        pub attribute: bool,
        #[prost(bool, tag = "5")]
        pub wrapped: bool,
        #[prost(message, repeated, tag = "6")]
        pub vendor_extension: Vec<NamedAny>,
    }
}

static V2_PB: OnceLock<Vec<u8>> = OnceLock::new();

/// `GET /openapi/v2` (protobuf): [`crate::openapi::v2_document`] as an encoded gnostic
/// `openapi.v2.Document`. Built once, on first use.
pub fn v2_protobuf() -> &'static [u8] {
    V2_PB.get_or_init(|| {
        let doc = match serde_json::from_slice::<Value>(crate::openapi::v2_document()) {
            Ok(v) => document(&v),
            Err(e) => {
                tracing::error!(error = %e, "the swagger 2.0 document is not valid JSON");
                pb::Document::default()
            }
        };
        doc.encode_to_vec()
    })
}

/// The representation of `/openapi/v2` chosen by [`negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Format {
    /// The swagger JSON document.
    Json,
    /// The gnostic protobuf, answered with Content-Type [`MIME_PB_DOTTED`].
    Protobuf,
}

/// Picks the representation of `/openapi/v2` for an `Accept` header: the highest-`q` media range
/// (ties in the client's order) that is the gnostic protobuf type, JSON, or a wildcard. `None`
/// means 406.
pub fn negotiate(accept: &str) -> Option<V2Format> {
    let mut ranges: Vec<(f32, V2Format)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let mime = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                return None;
            }
            let format = if mime == MIME_PB || mime == MIME_PB_DOTTED {
                V2Format::Protobuf
            } else if mime.contains("json") || mime == "*/*" || mime == "application/*" {
                V2Format::Json
            } else {
                return None;
            };
            Some((q, format))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.first().map(|(_, f)| *f)
}

// ---------------------------------------------------------------------------------------------
// JSON → gnostic conversion
// ---------------------------------------------------------------------------------------------

fn string(m: &Map<String, Value>, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn boolean(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn float(m: &Map<String, Value>, key: &str) -> f64 {
    m.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn int(m: &Map<String, Value>, key: &str) -> i64 {
    m.get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

fn strings(m: &Map<String, Value>, key: &str) -> Vec<String> {
    match m.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn object<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

/// `Any { yaml }` holding the YAML text of `v`, as gnostic's `NewAny` produces it.
fn any(v: &Value) -> pb::Any {
    let yaml = serde_yaml_ng::to_string(v)
        .or_else(|_| serde_json::to_string(v).map(|s| s + "\n"))
        .unwrap_or_default();
    pb::Any { yaml }
}

fn opt_any(m: &Map<String, Value>, key: &str) -> Option<pb::Any> {
    m.get(key).map(any)
}

fn enum_values(m: &Map<String, Value>) -> Vec<pb::Any> {
    m.get("enum")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(any).collect())
        .unwrap_or_default()
}

/// The `x-…` keys of `m`, as gnostic stores vendor extensions.
fn extensions(m: &Map<String, Value>) -> Vec<pb::NamedAny> {
    m.iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| pb::NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect()
}

fn named_anys(m: Option<&Map<String, Value>>) -> Vec<pb::NamedAny> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| pb::NamedAny {
                name: k.clone(),
                value: Some(any(v)),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn external_docs(m: &Map<String, Value>) -> Option<pb::ExternalDocs> {
    object(m, "externalDocs").map(|d| pb::ExternalDocs {
        description: string(d, "description"),
        url: string(d, "url"),
        vendor_extension: extensions(d),
    })
}

/// The swagger document `v` as a gnostic `Document`.
pub fn document(v: &Value) -> pb::Document {
    let empty = Map::new();
    let m = v.as_object().unwrap_or(&empty);
    pb::Document {
        swagger: string(m, "swagger"),
        info: object(m, "info").map(info),
        host: string(m, "host"),
        base_path: string(m, "basePath"),
        schemes: strings(m, "schemes"),
        consumes: strings(m, "consumes"),
        produces: strings(m, "produces"),
        paths: object(m, "paths").map(paths),
        definitions: object(m, "definitions").map(|d| pb::Definitions {
            additional_properties: named_schemas(d),
        }),
        parameters: object(m, "parameters").map(|p| pb::ParameterDefinitions {
            additional_properties: p
                .iter()
                .filter_map(|(k, v)| {
                    Some(pb::NamedParameter {
                        name: k.clone(),
                        value: Some(parameter(v.as_object()?)),
                    })
                })
                .collect(),
        }),
        responses: object(m, "responses").map(|r| pb::ResponseDefinitions {
            additional_properties: r
                .iter()
                .filter_map(|(k, v)| {
                    Some(pb::NamedResponse {
                        name: k.clone(),
                        value: Some(response(v.as_object()?)),
                    })
                })
                .collect(),
        }),
        security: security(m),
        security_definitions: object(m, "securityDefinitions").map(security_definitions),
        tags: m
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_object)
                    .map(|t| pb::Tag {
                        name: string(t, "name"),
                        description: string(t, "description"),
                        external_docs: external_docs(t),
                        vendor_extension: extensions(t),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        external_docs: external_docs(m),
        vendor_extension: extensions(m),
    }
}

fn info(m: &Map<String, Value>) -> pb::Info {
    pb::Info {
        title: string(m, "title"),
        version: string(m, "version"),
        description: string(m, "description"),
        terms_of_service: string(m, "termsOfService"),
        contact: object(m, "contact").map(|c| pb::Contact {
            name: string(c, "name"),
            url: string(c, "url"),
            email: string(c, "email"),
            vendor_extension: extensions(c),
        }),
        license: object(m, "license").map(|l| pb::License {
            name: string(l, "name"),
            url: string(l, "url"),
            vendor_extension: extensions(l),
        }),
        vendor_extension: extensions(m),
    }
}

fn security(m: &Map<String, Value>) -> Vec<pb::SecurityRequirement> {
    m.get("security")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .map(|req| pb::SecurityRequirement {
                    additional_properties: req
                        .iter()
                        .map(|(k, v)| pb::NamedStringArray {
                            name: k.clone(),
                            value: Some(pb::StringArray {
                                value: v
                                    .as_array()
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(Value::as_str)
                                            .map(str::to_string)
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            }),
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn security_definitions(m: &Map<String, Value>) -> pb::SecurityDefinitions {
    use pb::security_definitions_item::Oneof;
    pb::SecurityDefinitions {
        additional_properties: m
            .iter()
            .filter_map(|(k, v)| {
                let d = v.as_object()?;
                let oneof = match d.get("type").and_then(Value::as_str) {
                    Some("apiKey") => Oneof::ApiKeySecurity(pb::ApiKeySecurity {
                        r#type: string(d, "type"),
                        name: string(d, "name"),
                        r#in: string(d, "in"),
                        description: string(d, "description"),
                        vendor_extension: extensions(d),
                    }),
                    Some("basic") => {
                        Oneof::BasicAuthenticationSecurity(pb::BasicAuthenticationSecurity {
                            r#type: string(d, "type"),
                            description: string(d, "description"),
                            vendor_extension: extensions(d),
                        })
                    }
                    _ => return None,
                };
                Some(pb::NamedSecurityDefinitionsItem {
                    name: k.clone(),
                    value: Some(pb::SecurityDefinitionsItem { oneof: Some(oneof) }),
                })
            })
            .collect(),
    }
}

fn paths(m: &Map<String, Value>) -> pb::Paths {
    pb::Paths {
        vendor_extension: extensions(m),
        path: m
            .iter()
            .filter(|(k, _)| k.starts_with('/'))
            .filter_map(|(k, v)| {
                Some(pb::NamedPathItem {
                    name: k.clone(),
                    value: Some(path_item(v.as_object()?)),
                })
            })
            .collect(),
    }
}

fn path_item(m: &Map<String, Value>) -> pb::PathItem {
    let op = |verb: &str| object(m, verb).map(operation);
    pb::PathItem {
        xref: string(m, "$ref"),
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        options: op("options"),
        head: op("head"),
        patch: op("patch"),
        parameters: parameters(m),
        vendor_extension: extensions(m),
    }
}

fn operation(m: &Map<String, Value>) -> pb::Operation {
    pb::Operation {
        tags: strings(m, "tags"),
        summary: string(m, "summary"),
        description: string(m, "description"),
        external_docs: external_docs(m),
        operation_id: string(m, "operationId"),
        produces: strings(m, "produces"),
        consumes: strings(m, "consumes"),
        parameters: parameters(m),
        responses: object(m, "responses").map(responses),
        schemes: strings(m, "schemes"),
        deprecated: boolean(m, "deprecated"),
        security: security(m),
        vendor_extension: extensions(m),
    }
}

fn parameters(m: &Map<String, Value>) -> Vec<pb::ParametersItem> {
    use pb::parameters_item::Oneof;
    m.get("parameters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .map(|p| {
                    let oneof = if p.contains_key("$ref") {
                        Oneof::JsonReference(json_reference(p))
                    } else {
                        Oneof::Parameter(Box::new(parameter(p)))
                    };
                    pb::ParametersItem { oneof: Some(oneof) }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn json_reference(m: &Map<String, Value>) -> pb::JsonReference {
    pb::JsonReference {
        xref: string(m, "$ref"),
        description: string(m, "description"),
    }
}

fn parameter(m: &Map<String, Value>) -> pb::Parameter {
    use pb::non_body_parameter::Oneof as NonBody;
    use pb::parameter::Oneof;
    let location = string(m, "in");
    let oneof = match location.as_str() {
        "body" => Oneof::BodyParameter(pb::BodyParameter {
            description: string(m, "description"),
            name: string(m, "name"),
            r#in: location,
            required: boolean(m, "required"),
            schema: object(m, "schema").map(schema),
            vendor_extension: extensions(m),
        }),
        "query" => Oneof::NonBodyParameter(pb::NonBodyParameter {
            oneof: Some(NonBody::QueryParameterSubSchema(query_like(m))),
        }),
        "formData" => Oneof::NonBodyParameter(pb::NonBodyParameter {
            oneof: Some(NonBody::FormDataParameterSubSchema(query_like(m))),
        }),
        "header" => Oneof::NonBodyParameter(pb::NonBodyParameter {
            oneof: Some(NonBody::HeaderParameterSubSchema(path_like(m))),
        }),
        _ => Oneof::NonBodyParameter(pb::NonBodyParameter {
            oneof: Some(NonBody::PathParameterSubSchema(path_like(m))),
        }),
    };
    pb::Parameter { oneof: Some(oneof) }
}

fn query_like(m: &Map<String, Value>) -> pb::QueryParameterSubSchema {
    pb::QueryParameterSubSchema {
        required: boolean(m, "required"),
        r#in: string(m, "in"),
        description: string(m, "description"),
        name: string(m, "name"),
        allow_empty_value: boolean(m, "allowEmptyValue"),
        r#type: string(m, "type"),
        format: string(m, "format"),
        items: object(m, "items").map(primitives_items),
        collection_format: string(m, "collectionFormat"),
        default: opt_any(m, "default"),
        maximum: float(m, "maximum"),
        exclusive_maximum: boolean(m, "exclusiveMaximum"),
        minimum: float(m, "minimum"),
        exclusive_minimum: boolean(m, "exclusiveMinimum"),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: boolean(m, "uniqueItems"),
        r#enum: enum_values(m),
        multiple_of: float(m, "multipleOf"),
        vendor_extension: extensions(m),
    }
}

fn path_like(m: &Map<String, Value>) -> pb::PathParameterSubSchema {
    pb::PathParameterSubSchema {
        required: boolean(m, "required"),
        r#in: string(m, "in"),
        description: string(m, "description"),
        name: string(m, "name"),
        r#type: string(m, "type"),
        format: string(m, "format"),
        items: object(m, "items").map(primitives_items),
        collection_format: string(m, "collectionFormat"),
        default: opt_any(m, "default"),
        maximum: float(m, "maximum"),
        exclusive_maximum: boolean(m, "exclusiveMaximum"),
        minimum: float(m, "minimum"),
        exclusive_minimum: boolean(m, "exclusiveMinimum"),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: boolean(m, "uniqueItems"),
        r#enum: enum_values(m),
        multiple_of: float(m, "multipleOf"),
        vendor_extension: extensions(m),
    }
}

fn primitives_items(m: &Map<String, Value>) -> pb::PrimitivesItems {
    pb::PrimitivesItems {
        r#type: string(m, "type"),
        format: string(m, "format"),
        items: object(m, "items").map(|i| Box::new(primitives_items(i))),
        collection_format: string(m, "collectionFormat"),
        default: opt_any(m, "default"),
        maximum: float(m, "maximum"),
        exclusive_maximum: boolean(m, "exclusiveMaximum"),
        minimum: float(m, "minimum"),
        exclusive_minimum: boolean(m, "exclusiveMinimum"),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: boolean(m, "uniqueItems"),
        r#enum: enum_values(m),
        multiple_of: float(m, "multipleOf"),
        vendor_extension: extensions(m),
    }
}

fn header_object(m: &Map<String, Value>) -> pb::Header {
    pb::Header {
        r#type: string(m, "type"),
        format: string(m, "format"),
        items: object(m, "items").map(primitives_items),
        collection_format: string(m, "collectionFormat"),
        default: opt_any(m, "default"),
        maximum: float(m, "maximum"),
        exclusive_maximum: boolean(m, "exclusiveMaximum"),
        minimum: float(m, "minimum"),
        exclusive_minimum: boolean(m, "exclusiveMinimum"),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: boolean(m, "uniqueItems"),
        r#enum: enum_values(m),
        multiple_of: float(m, "multipleOf"),
        description: string(m, "description"),
        vendor_extension: extensions(m),
    }
}

fn responses(m: &Map<String, Value>) -> pb::Responses {
    use pb::response_value::Oneof;
    pb::Responses {
        response_code: m
            .iter()
            .filter(|(k, _)| !k.starts_with("x-"))
            .filter_map(|(k, v)| {
                let r = v.as_object()?;
                let oneof = if r.contains_key("$ref") {
                    Oneof::JsonReference(json_reference(r))
                } else {
                    Oneof::Response(Box::new(response(r)))
                };
                Some(pb::NamedResponseValue {
                    name: k.clone(),
                    value: Some(pb::ResponseValue { oneof: Some(oneof) }),
                })
            })
            .collect(),
        vendor_extension: extensions(m),
    }
}

fn response(m: &Map<String, Value>) -> pb::Response {
    use pb::schema_item::Oneof;
    pb::Response {
        description: string(m, "description"),
        schema: object(m, "schema").map(|s| {
            let oneof = if s.get("type").and_then(Value::as_str) == Some("file") {
                Oneof::FileSchema(Box::new(pb::FileSchema {
                    format: string(s, "format"),
                    title: string(s, "title"),
                    description: string(s, "description"),
                    default: opt_any(s, "default"),
                    required: strings(s, "required"),
                    r#type: string(s, "type"),
                    read_only: boolean(s, "readOnly"),
                    external_docs: external_docs(s),
                    example: opt_any(s, "example"),
                    vendor_extension: extensions(s),
                }))
            } else {
                Oneof::Schema(Box::new(schema(s)))
            };
            pb::SchemaItem { oneof: Some(oneof) }
        }),
        headers: object(m, "headers").map(|h| pb::Headers {
            additional_properties: h
                .iter()
                .filter_map(|(k, v)| {
                    Some(pb::NamedHeader {
                        name: k.clone(),
                        value: Some(header_object(v.as_object()?)),
                    })
                })
                .collect(),
        }),
        examples: object(m, "examples").map(|e| pb::Examples {
            additional_properties: named_anys(Some(e)),
        }),
        vendor_extension: extensions(m),
    }
}

fn named_schemas(m: &Map<String, Value>) -> Vec<pb::NamedSchema> {
    m.iter()
        .filter_map(|(k, v)| {
            Some(pb::NamedSchema {
                name: k.clone(),
                value: Some(schema(v.as_object()?)),
            })
        })
        .collect()
}

/// A swagger schema object as a gnostic `Schema`. An empty `properties: {}` stays a present (empty)
/// `Properties` message, as gnostic keeps it: kube-openapi tells kinds from maps by its presence.
pub fn schema(m: &Map<String, Value>) -> pb::Schema {
    use pb::additional_properties_item::Oneof;
    pb::Schema {
        xref: string(m, "$ref"),
        format: string(m, "format"),
        title: string(m, "title"),
        description: string(m, "description"),
        default: opt_any(m, "default"),
        multiple_of: float(m, "multipleOf"),
        maximum: float(m, "maximum"),
        exclusive_maximum: boolean(m, "exclusiveMaximum"),
        minimum: float(m, "minimum"),
        exclusive_minimum: boolean(m, "exclusiveMinimum"),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: boolean(m, "uniqueItems"),
        max_properties: int(m, "maxProperties"),
        min_properties: int(m, "minProperties"),
        required: strings(m, "required"),
        r#enum: enum_values(m),
        additional_properties: match m.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Box::new(pb::AdditionalPropertiesItem {
                oneof: Some(Oneof::Boolean(*b)),
            })),
            Some(Value::Object(s)) => Some(Box::new(pb::AdditionalPropertiesItem {
                oneof: Some(Oneof::Schema(Box::new(schema(s)))),
            })),
            _ => None,
        },
        r#type: m.get("type").map(|_| pb::TypeItem {
            value: strings(m, "type"),
        }),
        items: match m.get("items") {
            Some(Value::Object(s)) => Some(pb::ItemsItem {
                schema: vec![schema(s)],
            }),
            Some(Value::Array(a)) => Some(pb::ItemsItem {
                schema: a.iter().filter_map(Value::as_object).map(schema).collect(),
            }),
            _ => None,
        },
        all_of: m
            .get("allOf")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).map(schema).collect())
            .unwrap_or_default(),
        properties: object(m, "properties").map(|p| pb::Properties {
            additional_properties: named_schemas(p),
        }),
        discriminator: string(m, "discriminator"),
        read_only: boolean(m, "readOnly"),
        xml: object(m, "xml").map(|x| pb::Xml {
            name: string(x, "name"),
            namespace: string(x, "namespace"),
            prefix: string(x, "prefix"),
            attribute: boolean(x, "attribute"),
            wrapped: boolean(x, "wrapped"),
            vendor_extension: extensions(x),
        }),
        external_docs: external_docs(m),
        example: opt_any(m, "example"),
        vendor_extension: extensions(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded() -> pb::Document {
        match pb::Document::decode(v2_protobuf()) {
            Ok(d) => d,
            Err(e) => panic!("the encoded document does not decode: {e}"),
        }
    }

    fn definition<'a>(doc: &'a pb::Document, name: &str) -> &'a pb::Schema {
        doc.definitions
            .as_ref()
            .and_then(|d| d.additional_properties.iter().find(|n| n.name == name))
            .and_then(|n| n.value.as_ref())
            .unwrap_or_else(|| panic!("no definition {name}"))
    }

    fn property<'a>(s: &'a pb::Schema, name: &str) -> &'a pb::Schema {
        s.properties
            .as_ref()
            .and_then(|p| p.additional_properties.iter().find(|n| n.name == name))
            .and_then(|n| n.value.as_ref())
            .unwrap_or_else(|| panic!("no property {name}"))
    }

    fn ext<'a>(s: &'a [pb::NamedAny], name: &str) -> Option<&'a str> {
        s.iter()
            .find(|n| n.name == name)
            .and_then(|n| n.value.as_ref())
            .map(|a| a.yaml.as_str())
    }

    #[test]
    fn round_trip_keeps_definitions_and_extensions() {
        let doc = decoded();
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(
            doc.info.as_ref().map(|i| i.title.as_str()),
            Some("Kubernetes")
        );

        let pod = definition(&doc, "io.k8s.api.core.v1.Pod");
        assert_eq!(
            pod.r#type.as_ref().map(|t| t.value.clone()),
            Some(vec!["object".to_string()])
        );
        let gvk_yaml = ext(&pod.vendor_extension, "x-kubernetes-group-version-kind")
            .unwrap_or_else(|| panic!("Pod has no GVK extension"));
        let gvk: Value = serde_yaml_ng::from_str(gvk_yaml).unwrap_or_default();
        assert_eq!(gvk, json!([{"group": "", "kind": "Pod", "version": "v1"}]));
        assert_eq!(
            property(pod, "spec").xref,
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );

        let spec = definition(&doc, "io.k8s.api.core.v1.PodSpec");
        assert!(spec.required.contains(&"containers".to_string()));
        let containers = property(spec, "containers");
        assert_eq!(
            ext(&containers.vendor_extension, "x-kubernetes-patch-merge-key"),
            Some("name\n")
        );
        assert_eq!(
            ext(&containers.vendor_extension, "x-kubernetes-patch-strategy"),
            Some("merge\n")
        );
        let items = containers
            .items
            .as_ref()
            .map(|i| i.schema.as_slice())
            .unwrap_or_default();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].xref, "#/definitions/io.k8s.api.core.v1.Container");

        let node_selector = property(spec, "nodeSelector");
        assert!(matches!(
            node_selector
                .additional_properties
                .as_ref()
                .and_then(|a| a.oneof.as_ref()),
            Some(pb::additional_properties_item::Oneof::Schema(s))
                if s.r#type.as_ref().map(|t| t.value.as_slice()) == Some(&["string".to_string()][..])
        ));
    }

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = decoded();
        let item = doc
            .paths
            .as_ref()
            .and_then(|p| {
                p.path
                    .iter()
                    .find(|n| n.name == "/api/v1/namespaces/{namespace}/pods/{name}")
            })
            .and_then(|n| n.value.as_ref())
            .unwrap_or_else(|| panic!("no pod path"));
        let patch = item
            .patch
            .as_ref()
            .unwrap_or_else(|| panic!("no PATCH operation"));
        let gvk: Value = ext(&patch.vendor_extension, "x-kubernetes-group-version-kind")
            .and_then(|y| serde_yaml_ng::from_str(y).ok())
            .unwrap_or_default();
        assert_eq!(gvk, json!({"group": "", "kind": "Pod", "version": "v1"}));
        let inline = |p: &pb::ParametersItem| match p.oneof.as_ref() {
            Some(pb::parameters_item::Oneof::Parameter(param)) => param.oneof.clone(),
            _ => None,
        };
        let has_field_validation = patch.parameters.iter().any(|p| {
            matches!(
                inline(p),
                Some(pb::parameter::Oneof::NonBodyParameter(pb::NonBodyParameter {
                    oneof: Some(pb::non_body_parameter::Oneof::QueryParameterSubSchema(q)),
                })) if q.name == "fieldValidation" && q.r#in == "query"
            )
        });
        assert!(has_field_validation);
        let body = patch.parameters.iter().any(|p| {
            matches!(
                inline(p),
                Some(pb::parameter::Oneof::BodyParameter(b)) if b.name == "body"
            )
        });
        assert!(body);
    }

    #[test]
    fn conversion_details() {
        let s = schema(
            json!({
                "type": "object",
                "properties": {},
                "enum": ["a", "true"],
                "default": 3,
                "additionalProperties": false,
                "items": [{"type": "string"}, {"$ref": "#/definitions/X"}],
            })
            .as_object()
            .unwrap_or(&Map::new()),
        );
        assert_eq!(s.properties, Some(pb::Properties::default()));
        assert_eq!(s.r#enum[0].yaml, "a\n");
        assert_eq!(s.r#enum[1].yaml, "'true'\n");
        assert_eq!(s.default.as_ref().map(|a| a.yaml.as_str()), Some("3\n"));
        assert_eq!(s.items.as_ref().map(|i| i.schema.len()), Some(2));
        // An empty Properties message must survive encoding (kube-openapi checks for presence).
        let back = pb::Schema::decode(s.encode_to_vec().as_slice()).unwrap_or_default();
        assert_eq!(back.properties, Some(pb::Properties::default()));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(MIME_PB), Some(V2Format::Protobuf));
        assert_eq!(negotiate(MIME_PB_DOTTED), Some(V2Format::Protobuf));
        assert_eq!(negotiate("application/json"), Some(V2Format::Json));
        assert_eq!(negotiate("*/*"), Some(V2Format::Json));
        assert_eq!(
            negotiate(&format!("application/json;q=0.5, {MIME_PB}")),
            Some(V2Format::Protobuf)
        );
        assert_eq!(
            negotiate(&format!("{MIME_PB}, application/json")),
            Some(V2Format::Protobuf)
        );
        assert_eq!(negotiate("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(negotiate("application/json;q=0"), None);
    }
}
