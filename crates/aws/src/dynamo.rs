//! [`JobStore`] on one DynamoDB table, plus the lease records [`crate::capacity`] sums.
//!
//! # Table design (also in docs/aws.md)
//!
//! | record  | `pk`          | `sk`                          | GSI attributes                                  |
//! |---------|---------------|-------------------------------|-------------------------------------------------|
//! | job     | `JOB#<job>`   | `JOB`                         | `list_pk = "JOBS"`, `list_sk = <created>#<job>` |
//! | task    | `JOB#<job>`   | `TASK#<task>`                 |                                                 |
//! | attempt | `JOB#<job>`   | `ATTEMPT#<task>#<nnnnnn>`     | `compute_id` (once launched)                    |
//! | lease   | `LEASES`      | `<job>`                       |                                                 |
//!
//! A job and everything under it share one partition, so "tasks of a job" and "attempts of a
//! task" are single Query calls with `begins_with(sk, …)`. `jobs-by-created` (hash `list_pk`,
//! range `list_sk`) serves "most recent jobs" with one Query in descending order: a Scan would
//! have to read the whole table and sort it, and the constant partition is fine because jobs are
//! created at upload rate, far below one partition's 1,000 writes/s. `attempts-by-compute-id`
//! (hash `compute_id`) is sparse: only attempts that were launched carry the attribute.
//! Leases share the constant partition `LEASES` so that summing them is one strongly consistent
//! Query (a GSI would be eventually consistent and could miss the lease just written).
//!
//! Records are the domain structs serialized with serde_dynamo; `None` fields are left out
//! rather than stored as NULL, because `attribute_not_exists(event_version)` must be true for an
//! attempt that never saw an event. Every record carries `expires_at` (epoch seconds) for the
//! table's TTL.
//!
//! # Conditional writes
//!
//! Creates use `attribute_not_exists(pk)`. A transition is one UpdateItem conditioned on
//! `#state IN (<allowed_from>)` (and, for attempts carrying an event version,
//! `attribute_not_exists(event_version) OR event_version < :v`). When the condition fails the
//! record is read back (strongly consistent) to tell `Rejected(current)` from `Missing`.

use crate::sdk_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_attribute_value, to_item};
use sluice_core::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, ExecutionRun, Job, JobState, JobUpdate,
    Lease, Task, TaskState,
};
use sluice_core::ports::{JobStore, TaskUpdate, Transition};
use sluice_core::{JobId, StoreError, TaskId};
use std::collections::HashMap;

/// IAM actions of the job store's calls (the permission contract: see [`crate::permissions`]).
/// New records are conditional PutItems (`put_tasks`: one per task); a change is a
/// conditional UpdateItem, and a refused one reads the record back (GetItem).
pub const READ_ACTIONS: &[&str] = &["dynamodb:GetItem", "dynamodb:Query"];
pub const CREATE_ACTIONS: &[&str] = &["dynamodb:PutItem"];
pub const UPDATE_ACTIONS: &[&str] = &["dynamodb:UpdateItem", "dynamodb:GetItem"];

type Item = HashMap<String, AttributeValue>;

/// Name of the GSI listing jobs newest first.
pub const JOBS_BY_CREATED: &str = "jobs-by-created";
/// Name of the GSI finding an attempt from its ECS task ARN or Batch job id.
pub const ATTEMPTS_BY_COMPUTE_ID: &str = "attempts-by-compute-id";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long records live after they are written: long enough to look back at a quarter of runs.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

const JOBS_PARTITION: &str = "JOBS";
pub(crate) const LEASES_PARTITION: &str = "LEASES";
/// Writes in flight at once for `put_tasks`; keeps a large plan from tripping throttling.
const PUT_CONCURRENCY: usize = 16;

/// The job store over one DynamoDB table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    retention: chrono::Duration,
}

/// Create the table with the key schema, GSIs and TTL described in the module docs.
/// Deployments create it with infrastructure-as-code; tests and local setups call this.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build_error)
    };
    let all = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            attr("pk")?,
            attr("sk")?,
            attr("list_pk")?,
            attr("list_sk")?,
            attr("compute_id")?,
        ]))
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(JOBS_BY_CREATED)
                .key_schema(key("list_pk", KeyType::Hash)?)
                .key_schema(key("list_sk", KeyType::Range)?)
                .projection(all.clone())
                .build()
                .map_err(build_error)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(ATTEMPTS_BY_COMPUTE_ID)
                .key_schema(key("compute_id", KeyType::Hash)?)
                .projection(all)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB CreateTable", table, e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB UpdateTimeToLive", table, e))?;
    Ok(())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("building DynamoDB request: {e}"))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn job_pk(job: &JobId) -> String {
    format!("JOB#{job}")
}
fn task_sk(task: &TaskId) -> String {
    format!("TASK#{task}")
}
fn attempt_prefix(task: &TaskId) -> String {
    // The trailing '#' keeps task "t-1" from matching the attempts of task "t-10": ids cannot
    // contain '#'.
    format!("ATTEMPT#{task}#")
}
fn attempt_sk(key: &AttemptKey) -> String {
    // Zero-padded so the sort key orders attempts numerically.
    format!("{}{:06}", attempt_prefix(&key.task_id), key.number)
}

/// Fixed-width timestamp: chrono's serde form drops trailing zero fractions, which would not
/// sort lexicographically.
fn sortable_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Item, StoreError> {
    let mut item: Item = to_item(value).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    // See the module docs: absent, not NULL, so attribute_not_exists() means "never set".
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    Ok(item)
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, item: Item) -> Result<T, StoreError> {
    from_item(item).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

fn value<T: Serialize>(what: &str, v: &T) -> Result<AttributeValue, StoreError> {
    to_attribute_value(v).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// The attribute holding a task's parameters.
const PARAMS: &str = "params";

/// A task's parameters as one JSON string attribute. DynamoDB numbers have no integer/float
/// distinction, so a parameter `3.0` stored as a number would come back as `3`; the store keeps
/// them exactly as planned, and never queries on them.
fn params_json(
    what: &str,
    params: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<String, StoreError> {
    serde_json::to_string(params).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

fn decode_task(what: &str, mut item: Item) -> Result<Task, StoreError> {
    let params = match item.remove(PARAMS) {
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                what: what.to_owned(),
                message: format!("params: {e}"),
            })?
        }
        _ => {
            return Err(StoreError::Corrupt {
                what: what.to_owned(),
                message: "params missing or not a string".into(),
            });
        }
    };
    item.insert(PARAMS.into(), AttributeValue::M(HashMap::new()));
    let mut task: Task = decode(what, item)?;
    task.params = params;
    Ok(task)
}

/// One conditional state change, built up field by field.
struct Change<'a> {
    what: String,
    key: Item,
    state: &'a str,
    allowed_from: Vec<&'a str>,
    set: Vec<(&'static str, AttributeValue)>,
    remove: Vec<&'static str>,
    /// Only apply if no event at or above this version was applied.
    event_version: Option<u64>,
    /// Only apply while the job is on this run of its execution ([`ExecutionRun`]).
    run: Option<&'a ExecutionRun>,
}

enum Outcome {
    Applied(Item),
    /// The condition failed or no state may lead to the target: the caller reads back.
    NotApplied,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: chrono::Duration::days(DEFAULT_RETENTION_DAYS),
        }
    }

    /// Override how long records are kept before DynamoDB's TTL deletes them.
    pub fn with_retention(mut self, retention: chrono::Duration) -> Self {
        self.retention = retention;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn expires_at(&self) -> AttributeValue {
        AttributeValue::N((Utc::now() + self.retention).timestamp().to_string())
    }

    /// PutItem if no record has this key. `Ok(false)` when one does.
    async fn put_new(&self, what: &str, item: Item) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("DynamoDB PutItem", what, e)),
        }
    }

    async fn get_item(&self, what: &str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", what, e))?;
        Ok(out.item)
    }

    async fn get_decoded<T: DeserializeOwned>(
        &self,
        what: &str,
        key: Item,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(what, key)
            .await?
            .map(|item| decode(what, item))
            .transpose()
    }

    /// All items of a partition (whose sort key starts with `prefix`, when given), following
    /// pagination. DynamoDB rejects `begins_with` on an empty string, hence the `Option`.
    pub(crate) async fn query_partition(
        &self,
        what: &str,
        pk: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDB Query", what, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    async fn apply(&self, change: Change<'_>) -> Result<Outcome, StoreError> {
        if change.allowed_from.is_empty() {
            return Ok(Outcome::NotApplied);
        }
        let mut names = HashMap::from([("#state".to_owned(), "state".to_owned())]);
        let mut values = HashMap::from([(":to".to_owned(), s(change.state))]);
        let mut sets = vec!["#state = :to".to_owned()];
        for (i, (field, v)) in change.set.into_iter().enumerate() {
            names.insert(format!("#f{i}"), field.to_owned());
            values.insert(format!(":f{i}"), v);
            sets.push(format!("#f{i} = :f{i}"));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !change.remove.is_empty() {
            let mut removes = Vec::new();
            for (i, field) in change.remove.into_iter().enumerate() {
                names.insert(format!("#r{i}"), field.to_owned());
                removes.push(format!("#r{i}"));
            }
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let mut froms = Vec::new();
        for (i, from) in change.allowed_from.iter().enumerate() {
            values.insert(format!(":from{i}"), s(*from));
            froms.push(format!(":from{i}"));
        }
        let mut condition = format!("attribute_exists(pk) AND #state IN ({})", froms.join(", "));
        if let Some(v) = change.event_version {
            names.insert("#ev".to_owned(), "event_version".to_owned());
            values.insert(":ev".to_owned(), AttributeValue::N(v.to_string()));
            condition.push_str(" AND (attribute_not_exists(#ev) OR #ev < :ev)");
            update = update.replacen("SET ", "SET #ev = :ev, ", 1);
        }
        if let Some(run) = change.run {
            // ExecutionRun::is_current_for, as a condition of the write.
            names.insert("#arn".to_owned(), "execution_arn".to_owned());
            names.insert("#rc".to_owned(), "redrive_count".to_owned());
            values.insert(":arn".to_owned(), s(&run.execution_arn));
            values.insert(
                ":rc".to_owned(),
                AttributeValue::N(run.redrive_count.to_string()),
            );
            condition.push_str(
                " AND (attribute_not_exists(#arn) OR attribute_type(#arn, :null) OR #arn = :arn) \
                 AND (attribute_not_exists(#rc) OR #rc <= :rc)",
            );
            values.insert(":null".to_owned(), s("NULL"));
        }
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(change.key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => Ok(Outcome::Applied(out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Outcome::NotApplied)
            }
            Err(e) => Err(sdk_error("DynamoDB UpdateItem", &change.what, e)),
        }
    }

    /// Insert one task unless it exists: `false` from the put is the redrive case, where the
    /// existing task keeps its state.
    async fn put_task(&self, task: &Task, expires_at: AttributeValue) -> Result<(), StoreError> {
        let what = format!("task {}/{}", task.job_id, task.id);
        let mut item = encode(&what, task)?;
        item.insert(PARAMS.into(), s(params_json(&what, &task.params)?));
        item.extend(key(job_pk(&task.job_id), task_sk(&task.id)));
        item.insert("record".into(), s("task"));
        item.insert(TTL_ATTRIBUTE.into(), expires_at);
        self.put_new(&what, item).await.map(|_| ())
    }

    /// Apply a change and turn the result into a [`Transition`], reading back on rejection.
    async fn transition<T>(
        &self,
        change: Change<'_>,
        decode: fn(&str, Item) -> Result<T, StoreError>,
    ) -> Result<Transition<T>, StoreError> {
        let what = change.what.clone();
        let key = change.key.clone();
        match self.apply(change).await? {
            Outcome::Applied(item) => Ok(Transition::Applied(decode(&what, item)?)),
            Outcome::NotApplied => Ok(match self.get_item(&what, key).await? {
                Some(current) => Transition::Rejected(decode(&what, current)?),
                None => Transition::Missing,
            }),
        }
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create_job(&self, job: &Job) -> Result<bool, StoreError> {
        let what = format!("job {}", job.id);
        let mut item = encode(&what, job)?;
        item.extend(key(job_pk(&job.id), "JOB".to_owned()));
        item.insert("record".into(), s("job"));
        item.insert("list_pk".into(), s(JOBS_PARTITION));
        item.insert(
            "list_sk".into(),
            s(format!("{}#{}", sortable_time(&job.created_at), job.id)),
        );
        item.insert(TTL_ATTRIBUTE.into(), self.expires_at());
        self.put_new(&what, item).await
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.get_decoded(&format!("job {id}"), key(job_pk(id), "JOB".into()))
            .await
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        while jobs.len() < limit {
            let page = i32::try_from(limit - jobs.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(JOBS_BY_CREATED)
                .key_condition_expression("list_pk = :p")
                .expression_attribute_values(":p", s(JOBS_PARTITION))
                .scan_index_forward(false)
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDB Query", JOBS_BY_CREATED, e))?;
            for item in out.items.unwrap_or_default() {
                jobs.push(decode("job", item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn transition_job(
        &self,
        id: &JobId,
        to: JobState,
        update: JobUpdate,
    ) -> Result<Transition<Job>, StoreError> {
        let what = format!("job {id}");
        let mut set = vec![("updated_at", value(&what, &Utc::now())?)];
        if let Some(reason) = &update.reason {
            set.push(("reason", s(reason)));
        }
        if let Some(arn) = &update.execution_arn {
            set.push(("execution_arn", s(arn)));
        }
        if let Some(n) = update.task_count {
            set.push(("task_count", AttributeValue::N(n.to_string())));
        }
        if let Some(results) = &update.results {
            set.push(("results", value(&what, results)?));
        }
        let mut remove = Vec::new();
        if let Some(n) = update.redrive_count {
            set.push(("redrive_count", AttributeValue::N(n.to_string())));
            // A redrive starts the job afresh: the reason of the outcome before it goes.
            if update.reason.is_none() {
                remove.push("reason");
            }
        }
        self.transition(
            Change {
                what,
                key: key(job_pk(id), "JOB".into()),
                state: to.as_str(),
                allowed_from: to.transition_sources().iter().map(|s| s.as_str()).collect(),
                set,
                remove,
                event_version: None,
                run: update.only_in_run.as_ref(),
            },
            decode::<Job>,
        )
        .await
    }

    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let expires_at = self.expires_at();
        let writes: Vec<_> = tasks
            .iter()
            .map(|task| self.put_task(task, expires_at.clone()))
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn get_task(&self, job: &JobId, task: &TaskId) -> Result<Option<Task>, StoreError> {
        let what = format!("task {job}/{task}");
        self.get_item(&what, key(job_pk(job), task_sk(task)))
            .await?
            .map(|item| decode_task(&what, item))
            .transpose()
    }

    async fn list_tasks(&self, job: &JobId) -> Result<Vec<Task>, StoreError> {
        let what = format!("tasks of {job}");
        let mut tasks: Vec<Task> = self
            .query_partition(&what, &job_pk(job), Some("TASK#"))
            .await?
            .into_iter()
            .map(|item| decode_task(&what, item))
            .collect::<Result<_, _>>()?;
        // Sort keys order by task id; the port promises input order. A job's tasks are read
        // whole anyway, so sorting here is cheaper than a second index.
        tasks.sort_by_key(|t| t.index);
        Ok(tasks)
    }

    async fn transition_task(
        &self,
        job: &JobId,
        task: &TaskId,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<Transition<Task>, StoreError> {
        let what = format!("task {job}/{task}");
        let mut set = vec![("updated_at", value(&what, &Utc::now())?)];
        let mut remove = Vec::new();
        if let Some(n) = update.attempts {
            set.push(("attempts", AttributeValue::N(n.to_string())));
        }
        if let Some(n) = update.spot_interruptions {
            set.push(("spot_interruptions", AttributeValue::N(n.to_string())));
        }
        if let Some(result) = &update.result {
            set.push(("result", value(&what, result)?));
        }
        match &update.last_error {
            Some(Some(e)) => set.push(("last_error", s(e))),
            Some(None) => remove.push("last_error"),
            None => {}
        }
        self.transition(
            Change {
                what,
                key: key(job_pk(job), task_sk(task)),
                state: to.as_str(),
                allowed_from: to.allowed_from().iter().map(|s| s.as_str()).collect(),
                set,
                remove,
                event_version: None,
                run: None,
            },
            decode_task,
        )
        .await
    }

    async fn create_attempt(&self, attempt: &Attempt) -> Result<bool, StoreError> {
        let what = format!("attempt {}", attempt.key);
        let mut item = encode(&what, attempt)?;
        item.extend(key(job_pk(&attempt.key.job_id), attempt_sk(&attempt.key)));
        item.insert("record".into(), s("attempt"));
        item.insert(TTL_ATTRIBUTE.into(), self.expires_at());
        self.put_new(&what, item).await
    }

    async fn get_attempt(&self, k: &AttemptKey) -> Result<Option<Attempt>, StoreError> {
        self.get_decoded(
            &format!("attempt {k}"),
            key(job_pk(&k.job_id), attempt_sk(k)),
        )
        .await
    }

    async fn find_attempt_by_compute_id(
        &self,
        compute_id: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        // GSIs are eventually consistent: an attempt launched milliseconds ago may not be
        // visible yet. The task-events handler finds attempts by the SLUICE_* environment the
        // event echoes first; this lookup is the fallback for events that lack it.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ATTEMPTS_BY_COMPUTE_ID)
            .key_condition_expression("compute_id = :c")
            .expression_attribute_values(":c", s(compute_id))
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB Query", ATTEMPTS_BY_COMPUTE_ID, e))?;
        let what = format!("attempt with compute id {compute_id}");
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| decode(&what, item))
            .transpose()
    }

    async fn list_attempts(&self, job: &JobId, task: &TaskId) -> Result<Vec<Attempt>, StoreError> {
        let what = format!("attempts of {job}/{task}");
        let mut attempts: Vec<Attempt> = self
            .query_partition(&what, &job_pk(job), Some(&attempt_prefix(task)))
            .await?
            .into_iter()
            .map(|item| decode(&what, item))
            .collect::<Result<_, _>>()?;
        attempts.sort_by_key(|a| a.key.number);
        Ok(attempts)
    }

    async fn transition_attempt(
        &self,
        k: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
    ) -> Result<Transition<Attempt>, StoreError> {
        let what = format!("attempt {k}");
        let mut set = Vec::new();
        if let Some(id) = &update.compute_id {
            set.push(("compute_id", s(id)));
        }
        if let Some(code) = update.exit_code {
            set.push(("exit_code", AttributeValue::N(code.to_string())));
        }
        if let Some(code) = &update.stop_code {
            set.push(("stop_code", s(code)));
        }
        if let Some(reason) = &update.stopped_reason {
            set.push(("stopped_reason", s(reason)));
        }
        if let Some(at) = &update.started_at {
            set.push(("started_at", value(&what, at)?));
        }
        if let Some(at) = &update.stopped_at {
            set.push(("stopped_at", value(&what, at)?));
        }
        if let Some(answer) = &update.answer {
            set.push(("answer", value(&what, answer)?));
        }
        if update.answered {
            set.push(("answered", AttributeValue::Bool(true)));
        }
        self.transition(
            Change {
                what,
                key: key(job_pk(&k.job_id), attempt_sk(k)),
                state: to.as_str(),
                allowed_from: to.allowed_from().iter().map(|s| s.as_str()).collect(),
                set,
                remove: Vec::new(),
                event_version: update.event_version,
                run: None,
            },
            decode::<Attempt>,
        )
        .await
    }

    async fn note_reclaim(
        &self,
        k: &AttemptKey,
        notice: &str,
    ) -> Result<Transition<Attempt>, StoreError> {
        self.note_attempt_reclaim(k, notice).await
    }

    async fn mark_answered(&self, k: &AttemptKey) -> Result<Transition<Attempt>, StoreError> {
        self.mark_attempt_answered(k).await
    }
}

impl DynamoJobStore {
    /// One attribute of an attempt set under `condition` (besides the item existing), without
    /// touching its state: a reclaim notice, the answered flag.
    async fn mark_attempt(
        &self,
        k: &AttemptKey,
        field: &str,
        v: AttributeValue,
        condition: &str,
        mut values: HashMap<String, AttributeValue>,
    ) -> Result<Transition<Attempt>, StoreError> {
        let what = format!("attempt {k}");
        let item_key = key(job_pk(&k.job_id), attempt_sk(k));
        values.insert(":v".to_owned(), v);
        let names = HashMap::from([
            ("#f".to_owned(), field.to_owned()),
            ("#state".to_owned(), "state".to_owned()),
            ("#answer".to_owned(), "answer".to_owned()),
        ]);
        // DynamoDB refuses names the expressions do not use: keep only those that appear.
        let names: HashMap<String, String> = names
            .into_iter()
            .filter(|(n, _)| n == "#f" || condition.contains(n.as_str()))
            .collect();
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key.clone()))
            .update_expression("SET #f = :v")
            .condition_expression(format!("attribute_exists(pk) AND {condition}"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Transition::Applied(decode(
                &what,
                out.attributes.unwrap_or_default(),
            )?)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(match self.get_item(&what, item_key).await? {
                    Some(current) => Transition::Rejected(decode(&what, current)?),
                    None => Transition::Missing,
                })
            }
            Err(e) => Err(sdk_error("DynamoDB UpdateItem", &what, e)),
        }
    }

    pub(crate) async fn note_attempt_reclaim(
        &self,
        k: &AttemptKey,
        notice: &str,
    ) -> Result<Transition<Attempt>, StoreError> {
        let values = HashMap::from([
            (":l".to_owned(), s(AttemptState::Launching.as_str())),
            (":r".to_owned(), s(AttemptState::Running.as_str())),
        ]);
        self.mark_attempt(k, "reclaim_notice", s(notice), "#state IN (:l, :r)", values)
            .await
    }

    pub(crate) async fn mark_attempt_answered(
        &self,
        k: &AttemptKey,
    ) -> Result<Transition<Attempt>, StoreError> {
        self.mark_attempt(
            k,
            "answered",
            AttributeValue::Bool(true),
            "attribute_exists(#answer)",
            HashMap::new(),
        )
        .await
    }
}

/// Lease records, used by [`crate::capacity::AsgCapacity`].
impl DynamoJobStore {
    /// Write (or overwrite: a retry with the same lease is a no-op) the job's lease.
    pub async fn put_lease(
        &self,
        lease: &Lease,
        max_age: chrono::Duration,
    ) -> Result<(), StoreError> {
        let what = format!("lease of {}", lease.job_id);
        let mut item = encode(&what, lease)?;
        item.extend(key(LEASES_PARTITION.to_owned(), lease.job_id.to_string()));
        item.insert("record".into(), s("lease"));
        // A lease whose job never released it (a crashed execution) stops counting after
        // `max_age`: the capacity sum ignores it and TTL eventually deletes it.
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N((lease.acquired_at + max_age).timestamp().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB PutItem", &what, e))?;
        Ok(())
    }

    /// Delete the job's lease; deleting a lease that does not exist is not an error. With
    /// `acquired_by`, only a lease last acquired by then: it is read (strongly consistent),
    /// and deleted on the condition that it is still the lease read, so an acquire in between
    /// (which renews it) keeps it.
    pub async fn delete_lease(
        &self,
        job: &JobId,
        acquired_by: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let what = format!("lease of {job}");
        let lease_key = key(LEASES_PARTITION.to_owned(), job.to_string());
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lease_key.clone()));
        if let Some(by) = acquired_by {
            let Some(item) = self.get_item(&what, lease_key).await? else {
                return Ok(());
            };
            let Some(seen) = item.get("acquired_at").cloned() else {
                return Err(StoreError::Corrupt {
                    what: what.clone(),
                    message: "no acquired_at".into(),
                });
            };
            let lease: Lease = decode(&what, item)?;
            if lease.acquired_at > by {
                return Ok(());
            }
            delete = delete
                .condition_expression("acquired_at = :seen")
                .expression_attribute_values(":seen", seen);
        }
        match delete.send().await {
            Ok(_) => Ok(()),
            // Acquired again since it was read: a newer run's lease, kept.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("DynamoDB DeleteItem", &what, e)),
        }
    }

    /// Leases that have not outlived their TTL, read strongly consistent.
    pub async fn active_leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
        let items = self
            .query_partition("leases", LEASES_PARTITION, None)
            .await?;
        let mut leases = Vec::new();
        for item in items {
            let expired = match item.get(TTL_ATTRIBUTE) {
                Some(AttributeValue::N(n)) => n.parse::<i64>().is_ok_and(|t| t <= now.timestamp()),
                _ => false,
            };
            if !expired {
                leases.push(decode("lease", item)?);
            }
        }
        Ok(leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::model::{Capacity, ObjectRef};

    #[test]
    fn sort_keys_order_attempts_and_times() {
        let k = |n| AttemptKey {
            job_id: JobId::new("j").unwrap(),
            task_id: TaskId::new("t-1").unwrap(),
            number: n,
        };
        assert_eq!(attempt_sk(&k(3)), "ATTEMPT#t-1#000003");
        assert!(attempt_sk(&k(9)) < attempt_sk(&k(10)));
        assert!(!attempt_sk(&k(1)).starts_with(&attempt_prefix(&TaskId::new("t-10").unwrap())));
        let a: DateTime<Utc> = "2026-01-01T00:00:20Z".parse().unwrap();
        let b: DateTime<Utc> = "2026-01-01T00:00:20.5Z".parse().unwrap();
        assert!(sortable_time(&a) < sortable_time(&b));
        assert_eq!(sortable_time(&a), "2026-01-01T00:00:20.000000000Z");
    }

    #[test]
    fn encoding_drops_nulls_and_round_trips() {
        let attempt = Attempt {
            key: AttemptKey {
                job_id: JobId::new("j").unwrap(),
                task_id: TaskId::new("t").unwrap(),
                number: 1,
            },
            state: AttemptState::Launching,
            capacity: Capacity::OnDemand,
            task_token: "tok".into(),
            compute_id: None,
            exit_code: None,
            stop_code: None,
            stopped_reason: None,
            event_version: None,
            started_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            stopped_at: None,
            reclaim_notice: None,
            answer: None,
            answered: false,
        };
        let item = encode("a", &attempt).unwrap();
        assert!(!item.contains_key("event_version"));
        assert!(!item.contains_key("compute_id"));
        assert_eq!(item.get("state"), Some(&s("LAUNCHING")));
        assert_eq!(item.get("capacity"), Some(&s("on-demand")));
        let back: Attempt = decode("a", item).unwrap();
        assert_eq!(back, attempt);

        let job = Job::new(
            JobId::new("j").unwrap(),
            "ber",
            ObjectRef::new("in", "ber/x.csv"),
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        let back: Job = decode("j", encode("j", &job).unwrap()).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn corrupt_items_are_typed_errors() {
        let item = HashMap::from([("state".to_owned(), s("NOPE"))]);
        assert!(matches!(
            decode::<Job>("job x", item),
            Err(StoreError::Corrupt { what, .. }) if what == "job x"
        ));
    }
}
