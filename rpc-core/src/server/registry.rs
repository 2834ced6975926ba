//! Building a server's registry: finding the endpoint a late check names, and the version
//! served per namespace, raised to what the registered descriptors need.

use std::collections::HashMap;

use super::method::Endpoint;
use crate::error::Error;
use crate::version::Version;

/// A method's registry key: namespace and name.
pub(crate) type Key = (Option<String>, String);

/// The endpoint `key` names, or an error naming `what` wanted it.
pub(crate) fn endpoint_mut<'a>(
    endpoints: &'a mut HashMap<Key, Box<dyn Endpoint>>,
    what: &str,
    key: &Key,
) -> Result<&'a mut Box<dyn Endpoint>, Error> {
    endpoints.get_mut(key).ok_or_else(|| {
        Error::Invalid(format!(
            "{what}: no method {:?} in namespace {:?}",
            key.1, key.0
        ))
    })
}

/// The version served in each namespace: the one set with `namespace_version`, which must
/// serve every descriptor registered in it; else the highest version the namespace's
/// descriptors need (one major per namespace); else the default, 1.0.
pub(crate) fn served_versions(
    explicit: HashMap<Option<String>, Version>,
    endpoints: &HashMap<Key, Box<dyn Endpoint>>,
) -> Result<HashMap<Option<String>, Version>, Error> {
    let mut served = explicit.clone();
    for ((namespace, name), endpoint) in endpoints {
        let Some(needed) = endpoint.required_version() else {
            continue;
        };
        if let Some(set) = explicit.get(namespace) {
            if !set.can_serve(needed) {
                return Err(Error::Invalid(format!(
                    "method {name:?} needs version {needed} of namespace {namespace:?}, \
                     but the server serves {set}"
                )));
            }
            continue;
        }
        match served.get(namespace) {
            Some(v) if v.major != needed.major => {
                return Err(Error::Invalid(format!(
                    "namespace {namespace:?} mixes majors {v} and {needed} ({name:?}); \
                     set namespace_version"
                )));
            }
            Some(v) if *v >= needed => {}
            _ => {
                served.insert(namespace.clone(), needed);
            }
        }
    }
    Ok(served)
}
