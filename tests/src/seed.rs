//! Creates in the emulator what the pipeline file names: the table, the notification topic
//! (with an SQS queue subscribed, to read what was sent), each stage's cluster, and each service with a task definition as a real team would have
//! (roles, awsvpc, env, secrets, logs, volumes, tags, a sidecar).

use crate::{ACCOUNT, REGION};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, EphemeralStorage, HostVolumeProperties, KeyValuePair, LogConfiguration,
    LogDriver, MountPoint, NetworkMode, PortMapping, RuntimePlatform, Secret, Tag, Volume,
};
use shared::adapters::dynamo::{BY_ECS_DEPLOYMENT_INDEX, BY_SERVICE_INDEX, HISTORY_ATTRIBUTES, IN_FLIGHT_INDEX};
use shared::domain::pipeline::Pipeline;
use std::collections::BTreeMap;

pub const TABLE: &str = "deployments";
pub const TOPIC: &str = "deploy-notifications";
pub const APPROVAL_TOPIC: &str = "deploy-approvals";
pub const PIPELINE_TABLE: &str = "pipelines";

pub struct World {
    pub table: String,
    pub topic_arn: String,
    /// An SQS queue subscribed to the topic: every notice published lands there.
    pub notices_queue_url: String,
    /// (cluster, service) → the task definition ARN the service starts on.
    pub initial: BTreeMap<(String, String), String>,
    pub approval_topic_arn: String,
    /// Approver → an SQS queue subscribed to the approvals topic with the filter policy
    /// `pipectl approvers sync` gives that approver's e-mail subscription.
    pub approver_queues: BTreeMap<String, String>,
}

pub async fn seed(config: &SdkConfig, pipeline: &Pipeline) -> World {
    create_table(config, TABLE).await;
    let topic_arn = aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(TOPIC)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic ARN");
    let notices_queue_url = subscribe_queue(config, &topic_arn, "notices", None).await;
    let approval_topic_arn = aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(APPROVAL_TOPIC)
        .send()
        .await
        .expect("create approvals topic")
        .topic_arn
        .expect("topic ARN");
    let mut approver_queues = BTreeMap::new();
    for (n, approver) in pipeline.approvers().enumerate() {
        let policy = shared::adapters::sns::approver_filter_policy(approver);
        let queue = subscribe_queue(config, &approval_topic_arn, &format!("approver-{n}"), Some(policy)).await;
        approver_queues.insert(approver.to_string(), queue);
    }
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut initial = BTreeMap::new();
    for stage in pipeline.stages() {
        ecs.create_cluster()
            .cluster_name(stage.cluster.as_str())
            .send()
            .await
            .expect("create cluster");
        for app in pipeline.applications() {
            for service in &app.services {
                let family = format!("{}-{}", service.name, stage.name);
                let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}:bootstrap", app.repository);
                let arn = register_task_definition(&ecs, &family, service.container.as_str(), &image).await;
                ecs.create_service()
                    .cluster(stage.cluster.as_str())
                    .service_name(service.name.as_str())
                    .task_definition(&arn)
                    .desired_count(2)
                    .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
                    .send()
                    .await
                    .expect("create service");
                initial.insert((stage.cluster.to_string(), service.name.to_string()), arn);
            }
        }
    }
    create_alarms(config, pipeline).await;
    World {
        table: TABLE.into(),
        topic_arn,
        notices_queue_url,
        initial,
        approval_topic_arn,
        approver_queues,
    }
}

/// Every alarm the stages name, as an ordinary account has them: not firing, some `OK` and
/// some still `INSUFFICIENT_DATA` (no datapoints yet). A test puts one in ALARM itself.
async fn create_alarms(config: &SdkConfig, pipeline: &Pipeline) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    for (n, alarm) in pipeline.alarm_names().enumerate() {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(alarm.as_str())
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("put metric alarm");
        if n % 2 == 0 {
            set_alarm_state(config, alarm.as_str(), aws_sdk_cloudwatch::types::StateValue::Ok).await;
        }
    }
}

/// Moves an alarm the seed made into `state`, as CloudWatch would on its own.
pub async fn set_alarm_state(config: &SdkConfig, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) {
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name(alarm)
        .state_value(state)
        .state_reason("set by the test")
        .send()
        .await
        .expect("set alarm state");
}

pub async fn subscribe_queue(config: &SdkConfig, topic_arn: &str, name: &str, filter_policy: Option<String>) -> String {
    let sqs = aws_sdk_sqs::Client::new(config);
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    aws_sdk_sns::Client::new(config)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .set_attributes(filter_policy.map(|policy| [("FilterPolicy".to_owned(), policy)].into()))
        .send()
        .await
        .expect("subscribe queue");
    queue_url
}

/// A notice SNS delivered: its subject and message. A queue receives a team notice's
/// `default` body, the chat channel's (Chatbot's custom-notification JSON): then `chat` holds
/// it and `message` its description, the text e-mail gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub message: String,
    pub chat: Option<serde_json::Value>,
}

impl Notice {
    fn delivered(subject: &str, body: &str) -> Self {
        let chat = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .filter(|chat| chat["version"] == "1.0" && chat["source"] == "custom");
        let message = match &chat {
            // The description is the e-mail's text in a code block.
            Some(chat) => {
                let description = chat["content"]["description"].as_str().unwrap_or_default();
                let text = description.strip_prefix("```\n").and_then(|d| d.strip_suffix("\n```"));
                text.expect("a description in a code block").to_owned()
            }
            None => body.to_owned(),
        };
        Notice {
            subject: subject.to_owned(),
            message,
            chat,
        }
    }
}

/// Takes every notice waiting in the subscribed queue (SNS's JSON envelope, read back).
pub async fn take_notices(config: &SdkConfig, queue_url: &str) -> Vec<Notice> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut notices = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return notices;
        }
        for message in messages {
            let envelope: serde_json::Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap();
            notices.push(Notice::delivered(
                envelope["Subject"].as_str().unwrap_or_default(),
                envelope["Message"].as_str().unwrap_or_default(),
            ));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// The stack's pipeline table holding `text` as v1 in force, as `pipectl pipeline push`
/// leaves it. Returns the table's name.
pub async fn store_pipeline(config: &SdkConfig, text: &str) -> String {
    create_pipeline_table(config, PIPELINE_TABLE).await;
    push_pipeline(config, text).await;
    PIPELINE_TABLE.to_owned()
}

/// A pipeline table as template.yaml declares it, empty.
pub async fn create_pipeline_table(config: &SdkConfig, table: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create the pipeline table");
}

/// Keeps `text` as the next version of the pipeline table and puts it in force.
pub async fn push_pipeline(config: &SdkConfig, text: &str) -> u32 {
    let store = shared::adapters::dynamo::DynamoPipelines::new(config, PIPELINE_TABLE);
    let was = store.activation().await.unwrap().map(|a| a.version.pipeline.version);
    let by = format!("arn:aws:iam::{ACCOUNT}:user/test");
    let version = store
        .add_version(
            text,
            &shared::domain::pipeline::text_hash(text),
            &by,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(store.activate(&version, was, &by, chrono::Utc::now()).await.unwrap());
    version.pipeline.version
}

/// A CloudFormation stack in the emulator with these outputs and parameters, as `pipectl
/// --stack` reads a deployed one (its one resource is a marker: moto needs one).
pub async fn create_stack(config: &SdkConfig, name: &str, outputs: &[(&str, &str)], parameters: &[(&str, &str)]) {
    let mut template =
        serde_json::json!({"Parameters": {}, "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}, "Outputs": {}});
    for (key, value) in outputs {
        template["Outputs"][*key] = serde_json::json!({ "Value": value });
    }
    let mut create = aws_sdk_cloudformation::Client::new(config)
        .create_stack()
        .stack_name(name);
    for (key, value) in parameters {
        template["Parameters"][*key] = serde_json::json!({"Type": "String", "Default": ""});
        create = create.parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(*key)
                .parameter_value(*value)
                .build(),
        );
    }
    create
        .template_body(template.to_string())
        .send()
        .await
        .expect("create the stack");
}

/// The eight functions, as a deployed stack's outputs name them (`<Camel>FunctionName`).
pub const FUNCTIONS: [&str; 8] = [
    "deploy-on-push",
    "approval-page",
    "promote",
    "snapshot",
    "cost-report",
    "track-deployment",
    "rollback-on-alarm",
    "break-glass",
];

/// pipectl, built, as an operator runs it against the emulator at `endpoint`.
pub fn pipectl(endpoint: &str) -> std::process::Command {
    let mut command = std::process::Command::new(crate::built_binary("pipectl", "debug"));
    command
        .env_clear()
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", endpoint);
    command
}

/// A stack `name` as `scripts/deploy.sh` leaves one: its outputs name `world`'s table and
/// approvals topic, `pipeline_table` and the functions (`<name>-<function>`), and its
/// parameters are those `pipectl pipeline parameters` derives from the file `pipeline`.
pub async fn deployed_stack(
    config: &SdkConfig,
    endpoint: &str,
    name: &str,
    world: &World,
    pipeline_table: &str,
    pipeline: &std::path::Path,
) {
    let functions: Vec<(String, String)> = FUNCTIONS
        .iter()
        .map(|f| {
            let camel: String = f.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect();
            (format!("{camel}FunctionName"), format!("{name}-{f}"))
        })
        .collect();
    let mut outputs: Vec<(&str, &str)> = functions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    outputs.extend([
        ("PipelineTableName", pipeline_table),
        ("DeploymentsTableName", world.table.as_str()),
        ("ApprovalsTopicArn", world.approval_topic_arn.as_str()),
        ("NotificationsTopicArn", world.topic_arn.as_str()),
    ]);
    let derived = pipectl(endpoint)
        .args(["pipeline", "parameters"])
        .arg(pipeline)
        .output()
        .expect("pipectl runs");
    assert!(derived.status.success(), "{}", String::from_utf8_lossy(&derived.stderr));
    let derived = String::from_utf8(derived.stdout).expect("UTF-8");
    let parameters: Vec<(&str, &str)> = derived.lines().filter_map(|line| line.split_once('=')).collect();
    create_stack(config, name, &outputs, &parameters).await;
}

/// The table as template.yaml declares it.
pub async fn create_table(config: &SdkConfig, table: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    // As template.yaml has them: history rows without the stored definitions, keys only for
    // the ECS deployment id.
    let history = Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(HISTORY_ATTRIBUTES.iter().map(|a| a.to_string()).collect()))
        .build();
    let keys_only = Projection::builder().projection_type(ProjectionType::KeysOnly).build();
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("svc_pk"))
        .attribute_definitions(attr("svc_sk"))
        .attribute_definitions(attr("ecs_deployment_id"))
        .attribute_definitions(attr("in_flight"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(BY_SERVICE_INDEX)
                .key_schema(key("svc_pk", KeyType::Hash))
                .key_schema(key("svc_sk", KeyType::Range))
                .projection(history)
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(BY_ECS_DEPLOYMENT_INDEX)
                .key_schema(key("ecs_deployment_id", KeyType::Hash))
                .projection(keys_only.clone())
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(IN_FLIGHT_INDEX)
                .key_schema(key("in_flight", KeyType::Hash))
                .projection(keys_only)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
}

async fn register_task_definition(ecs: &aws_sdk_ecs::Client, family: &str, container: &str, image: &str) -> String {
    let log = |prefix: &str| {
        LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", format!("/ecs/{family}"))
            .options("awslogs-region", REGION)
            .options("awslogs-stream-prefix", prefix)
            .build()
            .unwrap()
    };
    let app = ContainerDefinition::builder()
        .name(container)
        .image(image)
        .essential(true)
        .cpu(384)
        .memory(768)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .environment(KeyValuePair::builder().name("RUST_LOG").value("info").build())
        .environment(KeyValuePair::builder().name("STAGE_FAMILY").value(family).build())
        .secrets(
            Secret::builder()
                .name("DATABASE_URL")
                .value_from(format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{family}/db"))
                .build()
                .unwrap(),
        )
        .mount_points(
            MountPoint::builder()
                .source_volume("scratch")
                .container_path("/scratch")
                .build(),
        )
        .log_configuration(log(container))
        .build();
    let sidecar = ContainerDefinition::builder()
        .name("log-router")
        .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0")
        .essential(false)
        .memory(128)
        .log_configuration(log("log-router"))
        .build();
    ecs.register_task_definition()
        .family(family)
        .task_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-task"))
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{family}-execution"))
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(app)
        .container_definitions(sidecar)
        .volumes(
            Volume::builder()
                .name("scratch")
                .host(HostVolumeProperties::builder().build())
                .build(),
        )
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::Arm64)
                .operating_system_family(aws_sdk_ecs::types::OsFamily::Linux)
                .build(),
        )
        .tags(Tag::builder().key("team").value("analytics").build())
        .tags(Tag::builder().key("family").value(family).build())
        // As CloudFormation tags what it creates; RegisterTaskDefinition refuses such tags.
        .tags(
            Tag::builder()
                .key("aws:cloudformation:stack-name")
                .value("social-analytics")
                .build(),
        )
        .send()
        .await
        .expect("register task definition")
        .task_definition
        .and_then(|td| td.task_definition_arn)
        .expect("task definition ARN")
}

/// An RDS DB instance in the emulator (PostgreSQL, or a member of Aurora cluster `cluster`):
/// what a stage's `snapshot_before_deploy` names.
pub async fn create_database(config: &SdkConfig, name: &str, cluster: Option<&str>) {
    aws_sdk_rds::Client::new(config)
        .create_db_instance()
        .db_instance_identifier(name)
        .db_instance_class("db.t3.medium")
        .engine(if cluster.is_some() {
            "aurora-postgresql"
        } else {
            "postgres"
        })
        .set_db_cluster_identifier(cluster.map(str::to_owned))
        .master_username("app")
        .master_user_password("emulator-only-1")
        .allocated_storage(20)
        .send()
        .await
        .expect("create the DB instance");
}

/// A manual snapshot of `db` made by another tool (tagged `created-by=nightly-tool`): what
/// the snapshot function must never prune.
pub async fn snapshot_by_another_tool(config: &SdkConfig, db: &str, id: &str) {
    aws_sdk_rds::Client::new(config)
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(id)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("created-by")
                .value("nightly-tool")
                .build(),
        )
        .send()
        .await
        .expect("another tool's snapshot");
}

/// The manual DB snapshots in `region` (the config's own when `None`), by id, with their tags.
pub async fn manual_snapshots(config: &SdkConfig, region: Option<&str>) -> Vec<(String, Vec<(String, String)>)> {
    let mut regional = aws_sdk_rds::config::Builder::from(config);
    if let Some(region) = region {
        regional = regional.region(aws_config::Region::new(region.to_owned()));
    }
    let listed = aws_sdk_rds::Client::from_conf(regional.build())
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("describe snapshots");
    let mut snapshots: Vec<_> = listed
        .db_snapshots()
        .iter()
        .map(|s| {
            let tags = s
                .tag_list()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            (s.db_snapshot_identifier().unwrap_or_default().to_owned(), tags)
        })
        .collect();
    snapshots.sort();
    snapshots
}

/// Queues Cost Explorer's answer to the next GetCostAndUsage (moto tracks no cost): one month,
/// grouped by AWS service, through moto's `/moto-api/static/ce/cost-and-usage-results`.
pub async fn cost_and_usage(endpoint: &str, from: &str, to: &str, by_service: &[(&str, f64)]) {
    use http_body_util::{BodyExt, Full};
    let groups: Vec<serde_json::Value> = by_service
        .iter()
        .map(|(service, cost)| {
            serde_json::json!({
                "Keys": [service],
                "Metrics": {"UnblendedCost": {"Amount": cost.to_string(), "Unit": "USD"}},
            })
        })
        .collect();
    let results = serde_json::json!({"results": [{
        "ResultsByTime": [{
            "TimePeriod": {"Start": from, "End": to},
            "Total": {},
            "Groups": groups,
            "Estimated": true,
        }],
        "DimensionValueAttributes": [],
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }]});
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(format!("{endpoint}/moto-api/static/ce/cost-and-usage-results"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(results.to_string())))
        .unwrap();
    let response = client.request(request).await.expect("moto answers");
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "queueing cost results: {status} {body:?}");
}

/// Every service of `pipeline` at `count` running tasks (moto runs what is desired once a
/// service is updated; created, it runs none), but `starting` (stage, service): none of its
/// tasks run yet.
pub async fn run_tasks(config: &SdkConfig, pipeline: &Pipeline, count: i32, starting: (&str, &str)) {
    let ecs = aws_sdk_ecs::Client::new(config);
    for stage in pipeline.stages() {
        for service in pipeline.services() {
            if (stage.name.as_str(), service.name.as_str()) == starting {
                continue;
            }
            ecs.update_service()
                .cluster(stage.cluster.as_str())
                .service(service.name.as_str())
                .desired_count(count)
                .send()
                .await
                .expect("scale the service");
        }
    }
}

/// The snapshot function's handler, as its `main` builds it (clients for the pipeline's copy
/// regions too), over `config` (moto, or a proxy in front of it), for `world`'s table and topic.
pub fn snapshot_handler(
    config: &SdkConfig,
    world: &World,
    pipeline: Pipeline,
) -> shared::handlers::scheduled_snapshots::ScheduledSnapshots<
    shared::adapters::dynamo::DynamoRecords,
    shared::adapters::rds::RdsSnapshots,
    shared::adapters::sns::SnsNotifier,
> {
    use shared::handlers::scheduled_snapshots::{ScheduledSnapshots, copy_regions};
    ScheduledSnapshots {
        records: shared::adapters::dynamo::DynamoRecords::new(config, &world.table),
        rds: shared::adapters::rds::RdsSnapshots::with_regions(config, copy_regions(&pipeline)),
        notifier: shared::adapters::sns::SnsNotifier::new(config, &world.topic_arn),
        pipeline,
    }
}

/// Two of the subnets moto's default VPC has. The tests link no EC2 client (its SDK is large):
/// this one query goes to moto as a plain form POST, which moto reads as EC2 by the
/// credential scope of its Authorization header.
pub async fn default_subnets(endpoint: &str) -> Vec<String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = hyper::Request::post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"Action=DescribeSubnets&Version=2016-11-15",
        )))
        .unwrap();
    let response = client.request(request).await.expect("DescribeSubnets");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    text.split("<subnetId>")
        .skip(1)
        .filter_map(|rest| rest.split("</subnetId>").next())
        .map(str::to_owned)
        .take(2)
        .collect()
}

/// An image pushed to ECR repository `repository` (created if new) under `tag`; its digest.
/// The manifest differs by `tag`, so each tag is its own image.
pub async fn push_image(config: &SdkConfig, repository: &str, tag: &str) -> String {
    let ecr = aws_sdk_ecr::Client::new(config);
    let created = ecr.create_repository().repository_name(repository).send().await;
    if let Err(err) = created {
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_repository_already_exists_exception()),
            "create repository: {err:?}"
        );
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": format!("sha256:{:0>64}", tag.len())},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                    "digest": format!("sha256:{:x<64}", tag.bytes().map(|b| format!("{b:02x}")).collect::<String>())}],
    });
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .expect("put image")
        .image
        .and_then(|image| image.image_id)
        .and_then(|id| id.image_digest)
        .expect("the pushed image's digest")
}

/// Temporary credentials of role `role` (in moto's account) for session `session`, as
/// AssumeRole gives them: (access key, secret, session token). STS then names the caller
/// `arn:aws:sts::123456789012:assumed-role/<role>/<session>`.
pub async fn assumed_role(config: &SdkConfig, role: &str, session: &str) -> (String, String, String) {
    let credentials = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::123456789012:role/{role}"))
        .role_session_name(session)
        .send()
        .await
        .expect("assume role")
        .credentials
        .expect("credentials");
    (
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token,
    )
}

/// A break-glass order's caller proof as moto reads it: moto verifies no signature and names
/// the caller by the access key in the `Authorization` header alone. (Real STS checks the
/// signature; pipectl makes real ones.)
pub fn unverified_proof(access_key: &str, security_token: &str) -> serde_json::Value {
    serde_json::json!({
        "credential": format!("{access_key}/20261207/{REGION}/sts/aws4_request"),
        "signature": "0".repeat(64),
        "amz_date": "20261207T000000Z",
        "security_token": security_token,
    })
}
