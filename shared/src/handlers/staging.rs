//! What the stage a release must pass first says of its digest, from the records: read when
//! the release asks for approval, and again just before the approved release deploys.

use crate::domain::approval::StageCheck;
use crate::domain::deployment::{DeploymentId, Kind, Status};
use crate::domain::names::{ImageDigest, ServiceName};
use crate::domain::pipeline::{Application, Stage};
use crate::ports::{Deployments, Quarantine, StoreError};
use chrono::{DateTime, Utc};

/// How far back a service's history is searched for the digest's newest deploy.
const HISTORY_PAGES: usize = 4;
const HISTORY_PAGE_SIZE: i32 = 50;

/// For each of `app`'s services in stage `required`: its newest deploy of `digest` and whether
/// the digest is quarantined there.
pub(crate) async fn stage_checks<S: Deployments + Quarantine>(
    records: &S,
    required: &Stage,
    app: &Application,
    digest: &ImageDigest,
) -> Result<Vec<StageCheck>, StoreError> {
    let mut checks = Vec::new();
    for service in &app.services {
        let quarantined = records
            .quarantined(&required.cluster, &service.name)
            .await?
            .contains(digest);
        checks.push(StageCheck {
            service: service.name.clone(),
            newest_with_digest: newest_deploy_of(records, required, &service.name, digest).await?,
            quarantined,
        });
    }
    Ok(checks)
}

async fn newest_deploy_of<S: Deployments>(
    records: &S,
    stage: &Stage,
    service: &ServiceName,
    digest: &ImageDigest,
) -> Result<Option<(DeploymentId, Status, Option<DateTime<Utc>>)>, StoreError> {
    let mut after = None;
    for _ in 0..HISTORY_PAGES {
        let page = records
            .history(&stage.cluster, service, HISTORY_PAGE_SIZE, after.as_deref())
            .await?;
        let found = page
            .deployments
            .iter()
            .find(|d| d.kind == Kind::Deploy && &d.image.digest == digest);
        if let Some(d) = found {
            return Ok(Some((d.id.clone(), d.status, d.completed_at)));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(None)
}
