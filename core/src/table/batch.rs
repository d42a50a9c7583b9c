//! batch/v1 tables: jobs (with the Status column of recent releases) and cronjobs.

use super::{
    at, between, col, condition_true, format_label_selector, int, layout_containers, list, name,
    opt_bool, opt_int, parse_time, since, string, wide, Col, AGE_COL, CONTAINERS_DESC, IMAGES_DESC,
    NAME_COL,
};
use jiff::Timestamp;
use serde_json::Value;

pub(super) const JOB_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

pub(super) fn job_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(o, &["status", "succeeded"]);
    let completions = match opt_int(o, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(o, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        parse_time(at(o, &["status", "startTime"])),
        parse_time(at(o, &["status", "completionTime"])),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => between(start, end),
    };
    let conditions = list(o, &["status", "conditions"]);
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if at(o, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(conditions, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (containers, images) =
        layout_containers(list(o, &["spec", "template", "spec", "containers"]));
    vec![
        name(o).into(),
        status.into(),
        completions.into(),
        duration.into(),
        super::age(o, now),
        containers,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) const CRONJOB_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
    col("Active", "integer", "A list of pointers to currently running jobs."),
    col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", "A label query over pods that should match the pod count."),
];

pub(super) fn cronjob_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match at(o, &["status", "lastScheduleTime"]) {
        Some(t) => since(parse_time(Some(t)), now),
        None => "<none>".into(),
    };
    let timezone = at(o, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let suspend = match opt_bool(o, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let job_spec = at(o, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (containers, images) =
        layout_containers(list(job_spec, &["template", "spec", "containers"]));
    vec![
        name(o).into(),
        string(o, &["spec", "schedule"]).into(),
        timezone.into(),
        suspend.into(),
        (list(o, &["status", "active"]).len() as i64).into(),
        last_schedule.into(),
        super::age(o, now),
        containers,
        images,
        format_label_selector(at(job_spec, &["selector"])).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, cells, column_names};
    use serde_json::{json, Value};

    fn arr(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    fn pod_template() -> Value {
        json!({"spec":{"restartPolicy":"Never","containers":[{"name":"pi","image":"perl:5.34"}]}})
    }

    #[test]
    fn jobs() {
        let names: Vec<String> = column_names("batch", "jobs")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let done = json!({"metadata":{"name":"pi","creationTimestamp":ago(600)},
            "spec":{"completions":1,"parallelism":1,"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u"}},"template":pod_template()},
            "status":{"succeeded":1,"startTime":ago(600),"completionTime":ago(590),
                "conditions":[{"type":"SuccessCriteriaMet","status":"True"},{"type":"Complete","status":"True"}]}});
        assert_eq!(
            cells("batch", "jobs", done),
            arr(json!([
                "pi",
                "Complete",
                "1/1",
                "10s",
                "10m",
                "pi",
                "perl:5.34",
                "batch.kubernetes.io/controller-uid=u"
            ]))
        );
        let running = json!({"metadata":{"name":"r","creationTimestamp":ago(200)},"spec":{"parallelism":3,"template":pod_template()},
            "status":{"active":3,"startTime":ago(190)}});
        assert_eq!(
            cells("batch", "jobs", running)[1..5],
            arr(json!(["Running", "0/1 of 3", "3m10s", "3m20s"]))
        );
        let pending = json!({"metadata":{"name":"p"},"spec":{"completions":5}});
        assert_eq!(
            cells("batch", "jobs", pending)[1..5],
            arr(json!(["Running", "0/5", "", "<unknown>"]))
        );
        let failed = json!({"metadata":{"name":"f"},"spec":{"completions":1},
            "status":{"failed":1,"startTime":ago(100),"conditions":[{"type":"FailureTarget","status":"True"},{"type":"Failed","status":"True"}]}});
        assert_eq!(cells("batch", "jobs", failed)[1], "Failed");
        let target = json!({"metadata":{"name":"t"},"status":{"conditions":[{"type":"FailureTarget","status":"True"}]}});
        assert_eq!(cells("batch", "jobs", target)[1], "FailureTarget");
        let suspended = json!({"metadata":{"name":"s"},"spec":{"suspend":true},"status":{"conditions":[{"type":"Suspended","status":"True"}]}});
        assert_eq!(
            cells("batch", "jobs", suspended)[1..3],
            arr(json!(["Suspended", "0/1"]))
        );
        let mut deleting = json!({"metadata":{"name":"d","deletionTimestamp":ago(1)},"status":{"conditions":[{"type":"Suspended","status":"True"}]}});
        assert_eq!(cells("batch", "jobs", deleting.clone())[1], "Terminating");
        deleting["status"]["conditions"] = json!([{"type":"Complete","status":"False"}]);
        assert_eq!(cells("batch", "jobs", deleting)[1], "Terminating");
    }

    #[test]
    fn cronjobs() {
        let names: Vec<String> = column_names("batch", "cronjobs")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let cj = json!({"metadata":{"name":"hello","creationTimestamp":ago(3600)},
            "spec":{"schedule":"*/1 * * * *","suspend":false,"jobTemplate":{"spec":{"template":pod_template()}}},
            "status":{"active":[{"name":"hello-1"}],"lastScheduleTime":ago(30)}});
        assert_eq!(
            cells("batch", "cronjobs", cj),
            arr(json!([
                "hello",
                "*/1 * * * *",
                "<none>",
                "False",
                1,
                "30s",
                "60m",
                "pi",
                "perl:5.34",
                "<none>"
            ]))
        );
        let cj = json!({"metadata":{"name":"tz"},"spec":{"schedule":"0 3 * * *","timeZone":"Europe/Paris","suspend":true,
            "jobTemplate":{"spec":{"selector":{"matchLabels":{"a":"b"}}}}}});
        assert_eq!(
            cells("batch", "cronjobs", cj),
            arr(json!([
                "tz",
                "0 3 * * *",
                "Europe/Paris",
                "True",
                0,
                "<none>",
                "<unknown>",
                "",
                "",
                "a=b"
            ]))
        );
        let cj = json!({"metadata":{"name":"u"},"spec":{"schedule":"@daily"}});
        assert_eq!(cells("batch", "cronjobs", cj)[3], "<unset>");
    }
}
