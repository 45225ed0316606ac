//! Handles that services in one process offer each other (the embedded mode): the ledger offers
//! its engine, and accounts or payments use it without a network hop. A service started alone
//! finds nothing here and uses its HTTP client instead.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A map from a handle's type to the one instance offered.
#[derive(Clone, Default)]
pub struct Registry {
    handles: Arc<RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.handles.read().map(|h| h.len()).unwrap_or_default();
        f.debug_struct("Registry").field("handles", &n).finish()
    }
}

impl Registry {
    /// Offers `handle` to the services started after this one.
    pub fn provide<T: Any + Send + Sync>(&self, handle: T) {
        if let Ok(mut h) = self.handles.write() {
            h.insert(TypeId::of::<T>(), Arc::new(handle));
        }
    }

    /// The handle of type `T`, if a service in this process offered one.
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        let h = self.handles.read().ok()?;
        h.get(&TypeId::of::<T>())?.downcast_ref::<T>().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_found_by_type() {
        let r = Registry::default();
        assert_eq!(r.get::<String>(), None);
        r.provide(String::from("ledger"));
        r.provide(7u32);
        assert_eq!(r.get::<String>().as_deref(), Some("ledger"));
        assert_eq!(r.get::<u32>(), Some(7));
    }
}
