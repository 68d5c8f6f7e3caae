//! The pipeline a function serves under: the file `PIPELINE_FILE` names (tests, local runs),
//! or the stack's version in force, read at start-up and again when an invocation starts
//! more than a TTL after the last read. The handler is rebuilt (from clients built once)
//! only when the version changes, so an invocation sees one pipeline from start to end.

use crate::domain::pipeline::Pipeline;
use crate::lambda::runtime::{InitError, env, pipeline_file};
use crate::ports::{PipelineStore, StoredPipeline};
use std::sync::{Arc, Mutex};
use tokio::time::{Duration, Instant};

/// How long a function serves under the version it read before it looks again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

pub enum PipelineSource<S> {
    /// Read once, never again.
    File(Box<Pipeline>),
    Stack {
        store: S,
        ttl: Duration,
    },
}

/// A handler built under the pipeline in force, kept until the pipeline changes.
pub struct Served<S, B, H> {
    source: PipelineSource<S>,
    build: B,
    current: Mutex<Current<H>>,
}

struct Current<H> {
    handler: Arc<H>,
    /// The stack's version it was built under (`None`: a file's).
    version: Option<u32>,
    read_at: Instant,
}

impl<S, B, H> Served<S, B, H>
where
    S: PipelineStore,
    B: Fn(Pipeline) -> H,
{
    /// Reads the pipeline (a missing or invalid one fails the start) and builds the handler.
    pub async fn start(source: PipelineSource<S>, build: B) -> Result<Self, InitError> {
        let (pipeline, version) = match &source {
            PipelineSource::File(pipeline) => ((**pipeline).clone(), None),
            PipelineSource::Stack { store, .. } => {
                let stored = store
                    .in_force()
                    .await
                    .map_err(|e| InitError::PipelineStore(e.message))?
                    .ok_or(InitError::NoPipeline)?;
                (parse(&stored)?, Some(stored.version))
            }
        };
        let current = Current {
            handler: Arc::new(build(pipeline)),
            version,
            read_at: Instant::now(),
        };
        Ok(Self {
            source,
            build,
            current: Mutex::new(current),
        })
    }

    /// The handler for this invocation: rebuilt first if the stack's version changed. When
    /// the stack cannot be read the last version read goes on serving (a warning is logged),
    /// and the next look is a TTL later.
    pub async fn handler(&self) -> Arc<H> {
        let PipelineSource::Stack { store, ttl } = &self.source else {
            return self.lock().handler.clone();
        };
        let (handler, version, read_at) = {
            let current = self.lock();
            (current.handler.clone(), current.version, current.read_at)
        };
        if read_at.elapsed() < *ttl {
            return handler;
        }
        let fresh = match store.in_force().await {
            Ok(Some(stored)) if Some(stored.version) != version => match parse(&stored) {
                Ok(pipeline) => Some((pipeline, stored.version)),
                Err(error) => {
                    tracing::warn!(version = stored.version, %error, "the pipeline in force does not parse; serving the last one read");
                    None
                }
            },
            Ok(Some(_)) => None,
            Ok(None) => {
                tracing::warn!("the stack holds no pipeline in force; serving the last one read");
                None
            }
            Err(error) => {
                tracing::warn!(error = %error.message, "reading the pipeline in force failed; serving the last one read");
                None
            }
        };
        let mut current = self.lock();
        current.read_at = Instant::now();
        if let Some((pipeline, version)) = fresh {
            tracing::info!(version, was = ?current.version, "serving a new pipeline version");
            current.handler = Arc::new((self.build)(pipeline));
            current.version = Some(version);
        }
        current.handler.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current<H>> {
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `build`'s handler under the pipeline in force: the file `PIPELINE_FILE` names, or the
/// stack's (the table `PIPELINE_TABLE` names, looked at again `PIPELINE_TTL_SECONDS` after
/// each read, 30 by default). Read here, so a function that cannot read it fails its start.
#[cfg(feature = "dynamodb")]
pub async fn served<H, B: Fn(Pipeline) -> H>(
    aws: &aws_config::SdkConfig,
    build: B,
) -> Result<Served<crate::adapters::dynamo::DynamoPipelines, B, H>, InitError> {
    let source = match pipeline_file()? {
        Some(pipeline) => PipelineSource::File(Box::new(pipeline)),
        None => PipelineSource::Stack {
            store: crate::adapters::dynamo::DynamoPipelines::new(aws, env("PIPELINE_TABLE")?),
            ttl: match std::env::var("PIPELINE_TTL_SECONDS") {
                Ok(seconds) => {
                    std::time::Duration::from_secs(seconds.parse().map_err(|_| InitError::PipelineTtl(seconds))?)
                }
                Err(_) => DEFAULT_TTL,
            },
        },
    };
    Served::start(source, build).await
}

fn parse(stored: &StoredPipeline) -> Result<Pipeline, InitError> {
    Ok(Pipeline::parse(&stored.text)?.with_version(stored.label()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Versions {
        in_force: Mutex<Result<Option<StoredPipeline>, String>>,
        reads: AtomicUsize,
    }

    impl Versions {
        fn set(&self, stored: Result<Option<StoredPipeline>, String>) {
            *self.in_force.lock().unwrap() = stored;
        }
    }

    impl PipelineStore for &Versions {
        async fn in_force(&self) -> Result<Option<StoredPipeline>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.in_force.lock().unwrap().clone().map_err(StoreError::retryable)
        }
    }

    fn stored(version: u32, stage: &str) -> StoredPipeline {
        let text = format!(
            "[[application]]\nname = \"app\"\nrepository = \"team/app\"\nservices = [{{ name = \"web\", container = \"web\" }}]\n\n[[stage]]\nname = \"{stage}\"\ncluster = \"c-{stage}\"\ntags = \"*\"\n"
        );
        StoredPipeline {
            version,
            hash: crate::domain::pipeline::text_hash(&text),
            text,
        }
    }

    fn stage_of(pipeline: Pipeline) -> (String, String) {
        (pipeline.stages()[0].name.to_string(), pipeline.version().to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_version_is_served_after_the_ttl_and_a_failed_read_keeps_the_last() {
        let versions = Versions {
            in_force: Mutex::new(Ok(Some(stored(1, "qa")))),
            reads: AtomicUsize::new(0),
        };
        let source = PipelineSource::Stack {
            store: &versions,
            ttl: Duration::from_secs(30),
        };
        let served = Served::start(source, stage_of).await.unwrap();
        assert_eq!(*served.handler().await, ("qa".into(), "v1".into()));
        assert_eq!(versions.reads.load(Ordering::SeqCst), 1, "within the TTL, no read");

        versions.set(Ok(Some(stored(2, "live"))));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(served.handler().await.0, "qa");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(*served.handler().await, ("live".into(), "v2".into()));

        versions.set(Err("throttled".into()));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(served.handler().await.0, "live", "an outage keeps the last version");
        let reads = versions.reads.load(Ordering::SeqCst);
        served.handler().await;
        assert_eq!(
            versions.reads.load(Ordering::SeqCst),
            reads,
            "the next look waits a TTL"
        );

        versions.set(Ok(Some(StoredPipeline {
            text: "not toml".into(),
            ..stored(3, "x")
        })));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(served.handler().await.0, "live", "an unreadable version is not served");
    }

    #[tokio::test]
    async fn a_stack_without_a_pipeline_fails_the_start() {
        let versions = Versions {
            in_force: Mutex::new(Ok(None)),
            reads: AtomicUsize::new(0),
        };
        let source = PipelineSource::Stack {
            store: &versions,
            ttl: DEFAULT_TTL,
        };
        let err = Served::start(source, stage_of).await.err().unwrap();
        assert!(err.to_string().contains("pipectl pipeline push"), "{err}");
    }
}
