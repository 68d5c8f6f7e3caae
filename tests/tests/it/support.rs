use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::TaskDefinitionField;
use chrono::{DateTime, Utc};
use harness::event_file;
use harness::moto::Moto;
use harness::seed::{Notice, World, seed, take_notices};
use shared::adapters::rds::RdsSnapshots;
use shared::adapters::{cloudwatch::CloudWatchAlarms, dynamo::DynamoRecords, ecs::EcsAdapter, sns::SnsNotifier};
use shared::domain::pipeline::Pipeline;
use shared::events::EcrEvent;
use shared::handlers::deploy_on_push::DeployOnPush;
use shared::handlers::promote::Promote;
use shared::handlers::request_approval::ApprovalDesk;
use shared::handlers::restore::Restorer;
use shared::handlers::rollback_on_alarm::RollbackOnAlarm;
use shared::handlers::track_deployment::TrackDeployment;
use std::collections::HashMap;

pub type Handler = DeployOnPush<DynamoRecords, EcsAdapter, CloudWatchAlarms, SnsNotifier, SnsNotifier>;

/// Where approval links point when a test does not serve the page.
pub const NO_PAGE: &str = "https://approvals.invalid/";
pub type Tracker = TrackDeployment<DynamoRecords, EcsAdapter, SnsNotifier>;
pub type Promoter = Promote<DynamoRecords, EcsAdapter, RdsSnapshots, SnsNotifier>;
pub type AlarmHandler = RollbackOnAlarm<DynamoRecords, EcsAdapter, SnsNotifier>;

pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/social-analytics/backend";
pub const DEV: &str = "social-analytics-dev";
pub const STAGING: &str = "social-analytics-staging";
pub const PROD: &str = "social-analytics-prod";
pub const SERVICES: [(&str, &str); 2] = [("backend-service", "api"), ("worker-service", "worker")];

pub struct Env {
    pub moto: Moto,
    pub config: SdkConfig,
    pub world: World,
    pub ecs: aws_sdk_ecs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub pipeline: Pipeline,
    /// The stack's pipeline table, holding the env's pipeline as v1 in force.
    pub pipeline_table: String,
}

pub fn fixture_pipeline() -> Pipeline {
    Pipeline::parse(&harness::fixture("three-stages.toml")).unwrap()
}

impl Env {
    pub async fn new() -> Self {
        Self::with_pipeline(&harness::fixture("three-stages.toml")).await
    }

    /// An emulator seeded with what the pipeline file `text` names, which is the stack's v1
    /// in force; the handlers read that pipeline.
    pub async fn with_pipeline(text: &str) -> Self {
        let pipeline = Pipeline::parse(text).unwrap().with_version("v1");
        let moto = Moto::start();
        let config = moto.sdk_config().await;
        let world = seed(&config, &pipeline).await;
        let pipeline_table = harness::seed::store_pipeline(&config, text).await;
        let ecs = aws_sdk_ecs::Client::new(&config);
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        Env {
            moto,
            config,
            world,
            ecs,
            ddb,
            pipeline,
            pipeline_table,
        }
    }

    pub fn handler(&self) -> Handler {
        self.handler_with(self.pipeline.clone(), &self.config)
    }

    /// A handler with its own pipeline and AWS config (e.g. through a fault proxy).
    pub fn handler_with(&self, pipeline: Pipeline, config: &SdkConfig) -> Handler {
        self.handler_linking_to(pipeline, config, NO_PAGE)
    }

    /// A handler whose approval links point at `page_url`.
    pub fn handler_linking_to(&self, pipeline: Pipeline, config: &SdkConfig, page_url: &str) -> Handler {
        DeployOnPush {
            pipeline,
            records: DynamoRecords::new(config, &self.world.table),
            ecs: EcsAdapter::new(config),
            approvals: ApprovalDesk {
                alarms: CloudWatchAlarms::new(config),
                mail: SnsNotifier::new(config, &self.world.approval_topic_arn),
                notifier: SnsNotifier::new(config, &self.world.topic_arn),
                page_url: page_url.into(),
            },
        }
    }

    fn restorer(&self, config: &SdkConfig) -> Restorer<DynamoRecords, EcsAdapter, SnsNotifier> {
        Restorer {
            records: DynamoRecords::new(config, &self.world.table),
            ecs: EcsAdapter::new(config),
            notifier: SnsNotifier::new(config, &self.world.topic_arn),
        }
    }

    pub fn tracker(&self) -> Tracker {
        self.tracker_with(&self.config)
    }

    /// A tracker with its own AWS config (e.g. through a fault proxy).
    pub fn tracker_with(&self, config: &SdkConfig) -> Tracker {
        TrackDeployment {
            pipeline: self.pipeline.clone(),
            restorer: self.restorer(config),
        }
    }

    /// The promotion, with its own AWS config (e.g. through a fault proxy).
    pub fn promoter_with(&self, config: &SdkConfig) -> Promoter {
        Promote {
            pipeline: self.pipeline.clone(),
            records: DynamoRecords::new(config, &self.world.table),
            ecs: EcsAdapter::new(config),
            rds: RdsSnapshots::new(config),
            notifier: SnsNotifier::new(config, &self.world.topic_arn),
        }
    }

    /// Service locks still held, and until when (ms since the epoch).
    pub async fn held_locks(&self) -> Vec<(String, i64)> {
        let out = self.ddb.scan().table_name(&self.world.table).send().await.unwrap();
        out.items()
            .iter()
            .filter_map(|item| {
                let until = item.get("lock_until")?.as_n().ok()?.parse().ok()?;
                Some((item["pk"].as_s().unwrap().clone(), until))
            })
            .collect()
    }

    /// What Lambda's retry finds once a held lock's lease ran out: the lease ended.
    pub async fn let_leases_run_out(&self) {
        for (pk, _) in self.held_locks().await {
            self.ddb
                .update_item()
                .table_name(&self.world.table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S("STATE".into()))
                .update_expression("SET lock_until = :past")
                .expression_attribute_values(":past", AttributeValue::N("0".into()))
                .send()
                .await
                .unwrap();
        }
    }

    /// The outbox entries: (key, sent).
    pub async fn outbox(&self) -> Vec<(String, bool)> {
        let out = self.ddb.scan().table_name(&self.world.table).send().await.unwrap();
        out.items()
            .iter()
            .filter(|item| {
                item.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| sk == "NOTE")
            })
            .map(|item| (item["pk"].as_s().unwrap().clone(), *item["sent"].as_bool().unwrap()))
            .collect()
    }

    pub fn alarm_handler(&self) -> AlarmHandler {
        self.alarm_handler_with(&self.config)
    }

    /// An alarm handler with its own AWS config (e.g. through a fault proxy).
    pub fn alarm_handler_with(&self, config: &SdkConfig) -> AlarmHandler {
        RollbackOnAlarm {
            pipeline: self.pipeline.clone(),
            restorer: self.restorer(config),
        }
    }

    /// The service's last known good as a rollback would find it: from its history (the one
    /// source of truth), read through the adapter, as its full record.
    pub async fn known_good(&self, cluster: &str, service: &str) -> Option<shared::domain::deployment::Deployment> {
        use shared::ports::Deployments;
        let records = DynamoRecords::new(&self.config, &self.world.table);
        let (cluster, service) = (
            shared::domain::names::ClusterName::parse(cluster).unwrap(),
            shared::domain::names::ServiceName::parse(service).unwrap(),
        );
        let page = records.history(&cluster, &service, 100, None).await.unwrap();
        let nothing_current = shared::domain::deployment::DeploymentId::from_stored(String::new());
        let good = shared::domain::rollback_plan::known_good(&page.deployments, &nothing_current)?;
        records.get_deployment(&good.from).await.unwrap()
    }

    /// The environment template.yaml gives the functions.
    pub fn function_vars(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("TABLE_NAME", self.world.table.as_str()),
            ("PIPELINE_TABLE", self.pipeline_table.as_str()),
            ("TOPIC_ARN", self.world.topic_arn.as_str()),
            ("APPROVAL_TOPIC_ARN", self.world.approval_topic_arn.as_str()),
            ("APPROVAL_PAGE_URL", NO_PAGE),
        ]
    }

    /// Every notice published since the last call, read back through the subscribed queue.
    pub async fn notices(&self) -> Vec<Notice> {
        take_notices(&self.config, &self.world.notices_queue_url).await
    }

    /// The digests quarantined on a service.
    pub async fn quarantined(&self, cluster: &str, service: &str) -> Vec<String> {
        let state = self.state_item(cluster, service).await;
        let mut digests = state
            .get("quarantined")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        digests.sort();
        digests
    }

    pub fn initial(&self, cluster: &str, service: &str) -> String {
        self.world.initial[&(cluster.to_owned(), service.to_owned())].clone()
    }

    pub async fn service(&self, cluster: &str, service: &str) -> aws_sdk_ecs::types::Service {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .unwrap();
        out.services.unwrap_or_default().pop().expect("the service exists")
    }

    pub async fn running(&self, cluster: &str, service: &str) -> String {
        self.service(cluster, service).await.task_definition.unwrap()
    }

    pub async fn primary_deployment_id(&self, cluster: &str, service: &str) -> String {
        let service = self.service(cluster, service).await;
        let primary = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .unwrap();
        primary.id().unwrap().to_owned()
    }

    pub async fn task_definition(
        &self,
        arn: &str,
    ) -> (aws_sdk_ecs::types::TaskDefinition, Vec<aws_sdk_ecs::types::Tag>) {
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        (out.task_definition.unwrap(), out.tags.unwrap_or_default())
    }

    /// Every revision the emulator holds, across families.
    pub async fn revision_count(&self) -> usize {
        let out = self.ecs.list_task_definitions().max_results(100).send().await.unwrap();
        out.task_definition_arns().len()
    }

    /// Deployment records (items where deployments live), as plain string maps, straight from
    /// the table.
    pub async fn records(&self) -> Vec<HashMap<String, String>> {
        let out = self.ddb.scan().table_name(&self.world.table).send().await.unwrap();
        out.items()
            .iter()
            .filter(|item| {
                let key = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                key("pk").starts_with("DEP#") && key("sk") == "DEP"
            })
            .map(|item| {
                item.iter()
                    .filter_map(|(k, v)| match v {
                        AttributeValue::S(s) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    pub async fn records_for(&self, cluster: &str, service: &str) -> Vec<HashMap<String, String>> {
        let mut records: Vec<_> = self
            .records()
            .await
            .into_iter()
            .filter(|r| r["cluster"] == cluster && r["service"] == service)
            .collect();
        records.sort_by(|a, b| a["requested_at"].cmp(&b["requested_at"]));
        records
    }

    /// The raw service-state item.
    pub async fn state_item(&self, cluster: &str, service: &str) -> HashMap<String, AttributeValue> {
        self.ddb
            .get_item()
            .table_name(&self.world.table)
            .key("pk", AttributeValue::S(format!("SVC#{cluster}#{service}")))
            .key("sk", AttributeValue::S("STATE".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default()
    }
}

/// ECS's `file` event (`completed.json`, `failed.json`) for `service` in `cluster`, ending the
/// ECS deployment `ecs_deployment_id` `minute` minutes into the story.
pub fn ecs_ended_in(
    cluster: &str,
    file: &str,
    service: &str,
    ecs_deployment_id: &str,
    minute: i64,
) -> shared::events::EcsDeploymentEvent {
    let mut event: serde_json::Value = serde_json::from_slice(&event_file("track-deployment", file)).unwrap();
    event["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}").into();
    event["detail"]["deploymentId"] = ecs_deployment_id.into();
    event["detail"]["updatedAt"] = harness::event_time(harness::story_time(minute)).into();
    serde_json::from_value(event).unwrap()
}

impl Env {
    /// `digest` goes through staging: a `main-*` push of it at `second` past 10:00 deploys dev
    /// and staging, and ECS completes staging's deployments.
    pub async fn passes_staging(&self, digest: &str, second: u32) {
        let mut main = push("main-0", 0, second);
        main.detail.image_digest = Some(digest.into());
        self.handler().handle_event(&main, deadline()).await.unwrap();
        let tracker = self.tracker();
        for (service, _) in SERVICES {
            let latest = self.records_for(STAGING, service).await.pop().unwrap();
            assert_eq!(latest["digest"], digest);
            let completed = ecs_ended_in(STAGING, "completed.json", service, &latest["ecs_deployment_id"], 1);
            tracker.handle_event(&completed, deadline()).await.unwrap();
        }
    }
}

pub fn event(name: &str) -> EcrEvent {
    serde_json::from_slice(&event_file("deploy-on-push", name)).unwrap()
}

/// A push of `digest_byte` repeated, tagged `tag`, at `second` past 10:00.
pub fn push(tag: &str, digest_byte: u8, second: u32) -> EcrEvent {
    let mut event = event("push-latest.json");
    event.detail.image_tag = Some(tag.into());
    event.detail.image_digest = Some(digest(digest_byte));
    event.time = Some(
        DateTime::parse_from_rfc3339(&format!("2026-11-22T10:00:{second:02}Z"))
            .unwrap()
            .with_timezone(&Utc),
    );
    event
}

pub fn digest(byte: u8) -> String {
    format!("sha256:{}", format!("{byte:02x}").repeat(32))
}

/// When EventBridge delivers an alarm event: seconds after its state changed.
pub fn delivered(event: &shared::events::AlarmEvent) -> DateTime<Utc> {
    let changed = event
        .detail
        .state
        .timestamp
        .as_deref()
        .expect("sample alarms carry a state timestamp");
    let changed = DateTime::parse_from_str(changed, "%Y-%m-%dT%H:%M:%S%.f%z").expect("CloudWatch's format");
    changed.with_timezone(&Utc) + chrono::TimeDelta::seconds(5)
}

pub fn deadline() -> DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::seconds(30)
}

/// Task-definition tags but the one naming the deployment that registered the revision.
pub fn without_deployment_tag(tags: Vec<aws_sdk_ecs::types::Tag>) -> Vec<aws_sdk_ecs::types::Tag> {
    tags.into_iter()
        .filter(|t| t.key() != Some(shared::domain::taskdef::DEPLOYMENT_TAG))
        .collect()
}

/// The tag naming the deployment that registered a revision.
pub fn deployment_tag(deployment: &str) -> aws_sdk_ecs::types::Tag {
    aws_sdk_ecs::types::Tag::builder()
        .key(shared::domain::taskdef::DEPLOYMENT_TAG)
        .value(deployment)
        .build()
}
