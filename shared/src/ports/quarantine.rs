//! Digests rolled back on a service, which must not return to it until an operator says so.

use super::StoreError;
use crate::domain::names::{ClusterName, ImageDigest, ServiceName};
use std::future::Future;

pub trait Quarantine: Send + Sync {
    /// Adds the digest to the service's quarantine (idempotent).
    fn quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the digest out of the quarantine; `false` if it was not in it.
    fn lift_quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The digests quarantined on the service.
    fn quarantined(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> impl Future<Output = Result<Vec<ImageDigest>, StoreError>> + Send;
}
