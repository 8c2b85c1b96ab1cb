//! A JSON answer sent exactly as stored, documented with the schema of `T`.

use std::marker::PhantomData;

use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;

/// Replaying an answer must give the same bytes, so the stored text is sent untouched rather
/// than parsed and serialised again.
pub struct StoredJson<T> {
    body: String,
    schema: PhantomData<fn() -> T>,
}

impl<T> StoredJson<T> {
    pub fn new(body: String) -> Self {
        StoredJson {
            body,
            schema: PhantomData,
        }
    }
}

impl<T: Type> Payload for StoredJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> IntoResponse for StoredJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.body)
    }
}
