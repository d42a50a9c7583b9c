//! kubelite-core: Kubernetes API machinery (schema, validation, defaulting, patch, selectors,
//! table printing, OpenAPI and discovery) and the HTTPS API server built on it.
//!
//! Later: scheduler and controllers, which talk to the store only through the API layer.

pub mod apply;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod fieldvalidation;
pub mod openapi;
pub mod openapi_v2_pb;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod table;
pub mod validation;
