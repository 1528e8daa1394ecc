//! An object-safe form of [`SessionStore`], so that the layer's type does not name the store.

use std::future::Future;
use std::pin::Pin;

use super::{
    CreateOutcome, Loaded, RemovalListener, SaveOutcome, SessionMeta, SessionStore, StoreError,
};
use crate::id::SessionId;
use crate::record::Record;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] with boxed futures.
pub trait ErasedStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>>;
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<CreateOutcome, StoreError>>;
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        changes: &'a Record,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>>;
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>>;
    fn take<'a>(
        &'a self,
        id: &'a SessionId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>>;
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn set_removal_listener(&self, listener: RemovalListener);
}

impl<S: SessionStore> ErasedStore for S {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>> {
        Box::pin(SessionStore::load(self, id, now_ms))
    }

    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<CreateOutcome, StoreError>> {
        Box::pin(SessionStore::create(self, id, record, meta, now_ms))
    }

    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        changes: &'a Record,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>> {
        Box::pin(SessionStore::save(self, id, changes, meta, now_ms))
    }

    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        meta: &'a SessionMeta,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>> {
        Box::pin(SessionStore::touch(self, id, meta, now_ms))
    }

    fn take<'a>(
        &'a self,
        id: &'a SessionId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>> {
        Box::pin(SessionStore::take(self, id, now_ms))
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SessionStore::delete(self, id))
    }

    fn set_removal_listener(&self, listener: RemovalListener) {
        SessionStore::set_removal_listener(self, listener);
    }
}
